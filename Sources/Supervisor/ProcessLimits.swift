import Glibc
import SupervisorCore

/// The supervisor's own limits, read once at start: the soft open-file limit is raised to the hard one
/// (systemd leaves the soft one at 1024 for select()'s sake; we use epoll, and 1024 workers need more),
/// then the core's `ResourceLimits` says how many workers fit.
enum ProcessLimits {
    /// Raises the soft RLIMIT_NOFILE to the hard limit; the new soft limit, or nil when unlimited (RLIM_INFINITY is all ones).
    static func raiseOpenFiles() -> Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur > rlim_t(Int32.max) ? nil : Int(limit.rlim_cur)
    }

    /// Raises the open-file limit and measures what the pool may use of both limits.
    static func measure() -> ResourceLimits {
        let openFiles = raiseOpenFiles()
        return ResourceLimits(openFiles: openFiles, openFilesInUse: openDescriptors(), processesLeft: cgroupProcessesLeft())
    }

    /// Entries of /proc/self/fd (the one the listing itself uses included, as a margin).
    static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 16 }
        defer { closedir(directory) }
        var count = 0
        while readdir(directory) != nil { count += 1 }
        return max(0, count - 2)
    }

    /// `pids.max` − `pids.current` of our cgroup (v2), nil when there is none or no limit.
    static func cgroupProcessesLeft() -> Int? {
        guard let cgroup = try? Sys.readFile("/proc/self/cgroup", limit: 4096),
              let line = cgroup.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
        let directory = "/sys/fs/cgroup\(line.dropFirst(3))"
        func number(_ file: String) -> Int? {
            (try? Sys.readFile("\(directory)/\(file)", limit: 64)).flatMap { Int($0.split(separator: "\n").first ?? "") }
        }
        guard let maximum = number("pids.max"), let current = number("pids.current") else { return nil }
        return max(0, maximum - current)
    }
}
