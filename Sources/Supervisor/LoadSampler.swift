import CHyperglass
import Glibc
import SupervisorCore

/// Takes autoscaling's samples from the kernel, with no help from the workers: the accept queues of
/// the listening sockets the supervisor holds (TCP_INFO, or sock_diag for a unix listener), and the
/// workers' CPU time from /proc/PID/stat, as a share of one CPU since the previous sample.
struct LoadSampler {
    private var ticks: [Int32: UInt64] = [:]
    private var at: Instant? = nil
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Forgets the CPU baseline (sampling paused): the next sample reports no CPU share.
    mutating func reset() {
        ticks = [:]
        at = nil
    }

    mutating func sample(listeners: [Int32], workers: [Int32], starting: Int, at now: Instant) -> LoadSample {
        var queued = 0
        for fd in listeners {
            var backlog: Int32 = 0
            let length = hg_listen_queue(fd, &backlog)
            if length > 0 { queued += Int(length) }
        }
        var current: [Int32: UInt64] = [:]
        var used = 0.0
        var compared = 0
        for pid in workers {
            guard let t = LoadSampler.cpuTicks(pid) else { continue }
            current[pid] = t
            if let before = ticks[pid], t >= before {
                used += Double(t - before)
                compared += 1
            }
        }
        var cpu: Double? = nil
        if let at, compared > 0, now > at {
            cpu = used / LoadSampler.ticksPerSecond / (now - at).seconds / Double(compared)
        }
        ticks = current
        at = now
        return LoadSample(queued: queued, cpu: cpu, starting: starting)
    }

    /// utime + stime of a process, in clock ticks; nil when it is gone.
    static func cpuTicks(_ pid: Int32) -> UInt64? {
        guard let text = try? Sys.readFile("/proc/\(pid)/stat", limit: 1024),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": state is field 3, utime 14 and stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }

    /// How many workers of `maxMemory` bytes fit in the memory the supervisor may use: its cgroup's
    /// cgroups' smallest memory limit (v2 memory.max as systemd's MemoryMax= sets it, or v1
    /// memory.limit_in_bytes, its own or an ancestor's), else the machine's MemTotal.
    static func memoryCeiling(maxMemory: UInt64?) -> Int? {
        guard let maxMemory, maxMemory > 0 else { return nil }
        var budget = CgroupLimits.memoryLimit()
        if budget == nil, let info = try? Sys.readFile("/proc/meminfo", limit: 8192),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
           let kib = line.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) }) {
            budget = kib * 1024
        }
        return budget.map { max(1, Int($0 / maxMemory)) }
    }
}
