import Glibc
import SupervisorCore

/// A v2 cgroup per worker (systemd's docs/CGROUP_DELEGATION.md): everything a worker starts, even a
/// helper that calls setsid() and ignores SIGTERM, is counted in the worker's cgroup, and
/// `cgroup.kill` (kernel 5.14) ends the whole tree at once. The hierarchy is the unified one at
/// /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid machine (with no controllers there, the
/// tracking and killing still work; limits need the controllers).
final class WorkerCgroups {
    /// The directory whose children are the workers' cgroups.
    let base: String
    /// True when `base` is a cgroup we made inside one shared with other processes (a terminal, the
    /// root cgroup), removed at exit; false when the supervisor's own cgroup was delegated to it.
    private let ownsBase: Bool
    /// The controllers enabled for the workers' cgroups ("memory", "pids"...).
    let controllers: Set<String>
    private var sequence = 0
    /// Each live worker's cgroup directory, by pid.
    private var byPid: [Int32: String] = [:]

    private init(base: String, ownsBase: Bool, controllers: Set<String>) {
        (self.base, self.ownsBase, self.controllers) = (base, ownsBase, controllers)
    }

    /// Where the supervisor may make cgroups: nil (and why, for the log) where it may not.
    /// Delegated (the only process in its cgroup, as under `Delegate=yes`): it first moves itself into
    /// a leaf `supervisor` (a cgroup with processes cannot enable controllers for its children; systemd
    /// 252 has no DelegateSubgroup=), and the workers' cgroups are its siblings. Shared: the workers go
    /// under a new `hyperglass-PID` beside the processes we share our cgroup with.
    static func setUp() -> (cgroups: WorkerCgroups?, note: String) {
        guard let mount = CgroupLimits.unifiedMount() else { return (nil, "no cgroup v2 hierarchy is mounted") }
        guard let path = CgroupLimits.membership().unified else { return (nil, "this process is in no v2 cgroup") }
        let own = mount + (path == "/" ? "" : path)
        guard Sys.fileExists(own + "/cgroup.procs") else { return (nil, "its v2 cgroup \(own) is not visible here (no cgroup namespace)") }
        guard access(own, W_OK) == 0 else { return (nil, "its v2 cgroup \(own) is not writable (\(String(cString: strerror(errno))))") }
        let me = getpid()
        let members = ((try? Sys.readFile(own + "/cgroup.procs", limit: 1 << 16)) ?? "").split(separator: "\n")
        let delegated = path != "/" && members == ["\(me)"]
        let base: String
        if delegated {
            let leaf = own + "/supervisor"
            guard makeDirectory(leaf), write("\(me)", to: leaf + "/cgroup.procs") else {
                return (nil, "cannot move into \(leaf): \(String(cString: strerror(errno)))")
            }
            base = own
        } else {
            base = own + "/" + sharedBaseName(pid: me)
            guard makeDirectory(base) else { return (nil, "cannot create \(base): \(String(cString: strerror(errno)))") }
        }
        // Only controllers the parent offers can be enabled; each one alone, so a refused one spoils none.
        let offered = ((try? Sys.readFile(base + "/cgroup.controllers", limit: 1024)) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
        var enabled: Set<String> = []
        for controller in ["cpu", "memory", "pids"] where offered.contains(Substring(controller)) {
            if write("+\(controller)", to: base + "/cgroup.subtree_control") { enabled.insert(controller) }
        }
        let cgroups = WorkerCgroups(base: base, ownsBase: !delegated, controllers: enabled)
        let shown = enabled.isEmpty ? "no controllers" : "controllers " + enabled.sorted().joined(separator: " ")
        return (cgroups, "a cgroup per worker under \(base) (\(delegated ? "delegated" : "shared") cgroup, \(shown))")
    }

    /// After an in-place upgrade (Takeover.swift): the cgroups the first program made, found again, since the
    /// pid and the tree are the same. Delegated, we are already in the leaf `supervisor` and the workers'
    /// cgroups are its siblings; shared, they are under `hyperglass-PID`. Each worker in `workers` is found
    /// by its cgroup's members; a worker cgroup with no live worker in it belonged to one that exited during
    /// the exec, and what it left is killed now, as its reaping would have. Nil when the first program had none.
    static func resume(workers: Set<Int32>) -> WorkerCgroups? {
        guard let mount = CgroupLimits.unifiedMount(), let path = CgroupLimits.membership().unified else { return nil }
        // In the root cgroup too (a container's own cgroup namespace shows it as "/"), as `setUp` made it there.
        let own = mount + (path == "/" ? "" : path)
        let delegated = own.hasSuffix("/supervisor")
        let base: String
        if delegated {
            base = String(own.dropLast("/supervisor".count))
        } else {
            // A first program of an earlier build named its shared base without the pid namespace.
            let named: [String] = [own + "/" + sharedBaseName(pid: getpid()), own + "/hyperglass-\(getpid())"]
            base = named.first { access($0, W_OK) == 0 } ?? named[0]
        }
        guard access(base, W_OK) == 0 else { return nil }
        let enabled = ((try? Sys.readFile(base + "/cgroup.subtree_control", limit: 1024)) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
        let cgroups = WorkerCgroups(base: base, ownsBase: !delegated, controllers: Set(enabled.map(String.init)))
        for directory in cgroups.leftovers() {
            let name = directory.split(separator: "/").last ?? ""
            if let number = name.split(separator: ".").last.flatMap({ Int($0) }) { cgroups.sequence = max(cgroups.sequence, number) }
            if let pid = cgroups.members(directory).first(where: workers.contains) {
                cgroups.byPid[pid] = directory
            } else {
                write("1", to: directory + "/cgroup.kill")
                rmdir(directory)  // EBUSY while the killed are still exiting: removeAll at exit takes it
            }
        }
        return cgroups
    }

    /// A new, empty cgroup for a worker of `slot`, and its `cgroup.procs` open for the child to join.
    func prepare(slot: Int) throws(SystemError) -> (directory: String, procsFD: Int32) {
        sequence += 1
        let directory = "\(base)/worker-\(slot).\(sequence)"
        guard WorkerCgroups.makeDirectory(directory) else { throw SystemError(operation: "create cgroup \(directory)", errno: errno) }
        let fd = open(directory + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        if fd < 0 {
            let error = errno
            rmdir(directory)
            throw SystemError(operation: "open \(directory)/cgroup.procs", errno: error)
        }
        return (directory, fd)
    }

    /// Sets a new worker cgroup's memory limits where the memory controller is enabled: `memory.max`
    /// (the OOM killer confined to this worker) and `memory.high` (reclaim and throttling above it).
    /// Returns what could not be set, for the log.
    func limit(_ directory: String, memoryMax: UInt64?, memoryHigh: UInt64?) -> String? {
        guard memoryMax != nil || memoryHigh != nil else { return nil }
        guard controllers.contains("memory") else { return "no memory controller is enabled under \(base)" }
        for (file, value) in [("memory.max", memoryMax), ("memory.high", memoryHigh)] {
            if let value, !WorkerCgroups.write("\(value)", to: "\(directory)/\(file)") {
                return "cannot write \(directory)/\(file): \(String(cString: strerror(errno)))"
            }
        }
        return nil
    }

    func adopt(_ directory: String, pid: Int32) { byPid[pid] = directory }

    /// Whether `pid` is in one of our workers' cgroups (a live worker's helper, reparented to us when its parent exited).
    func holds(_ pid: Int32) -> Bool {
        guard let mount = CgroupLimits.unifiedMount(),
              let path = CgroupMembership(procSelfCgroup: (try? Sys.readFile("/proc/\(pid)/cgroup", limit: 8192)) ?? "").unified
        else { return false }
        return (mount + (path == "/" ? "" : path)).hasPrefix(base + "/worker-")
    }

    func directory(of pid: Int32) -> String? { byPid[pid] }

    /// Kills what is left in the cgroup of `pid` (reaped) and forgets it. Returns its `cgroup.events`
    /// opened for epoll when something is still there, nil when it is empty and removed.
    func endTree(of pid: Int32) -> (directory: String, eventsFD: Int32)? {
        guard let directory = byPid.removeValue(forKey: pid) else { return nil }
        if !WorkerCgroups.write("1", to: directory + "/cgroup.kill") {
            // Before 5.14 there is no cgroup.kill: SIGKILL each member (one forking meanwhile could escape).
            for member in members(directory) { kill(member, SIGKILL) }
        }
        let fd = open(directory + "/cgroup.events", O_RDONLY | O_CLOEXEC)
        if fd < 0 || !WorkerCgroups.isPopulated(fd) {
            if fd >= 0 { close(fd) }
            rmdir(directory)
            return nil
        }
        return (directory, fd)
    }

    /// After epoll reported a change on `fd`: true (and the cgroup removed) once it is empty.
    func treeChanged(_ directory: String, eventsFD fd: Int32) -> Bool {
        if WorkerCgroups.isPopulated(fd) { return false }
        close(fd)
        rmdir(directory)
        return true
    }

    /// At exit: kills and removes every worker cgroup still there (bounded: 2 s per tree), then ours.
    func removeAll() {
        for directory in Array(byPid.values) + leftovers() {
            _ = WorkerCgroups.write("1", to: directory + "/cgroup.kill")
            var tries = 0
            while rmdir(directory) != 0, errno == EBUSY, tries < 200 {
                tries += 1
                usleep(10_000)
            }
        }
        byPid = [:]
        if ownsBase { rmdir(base) }
    }

    /// This process's pid namespace as the kernel numbers it (`/proc/self/ns/pid` → `pid:[4026531836]`): the
    /// cgroup tree is shared across pid namespaces (containers without a cgroup namespace, `unshare --pid`),
    /// pids are not, so a shared base is named by both and judged only by a supervisor of the same namespace.
    static let pidNamespace: String = {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        let link = n > 0 ? String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        let digits = link.filter(\.isNumber)
        return digits.isEmpty ? "0" : digits
    }()

    /// `hyperglass-NAMESPACE-PID`: the workers' cgroups of a supervisor that shares its cgroup.
    static func sharedBaseName(pid: Int32) -> String { "hyperglass-\(pidNamespace)-\(pid)" }

    /// The pid of the supervisor that made the shared base `name`, when a supervisor of our pid namespace did
    /// (or an earlier build, whose names carried the pid alone); nil for another namespace's, which we cannot
    /// judge: its pid means another process here, or none (it used to kill a live supervisor's workers).
    static func creator(ofSharedBase name: String) -> Int32? {
        guard name.hasPrefix("hyperglass-") else { return nil }
        let parts = name.dropFirst("hyperglass-".count).split(separator: "-", omittingEmptySubsequences: false)
        let pid: Int32?
        switch parts.count {
        case 1: pid = Int32(parts[0])
        case 2: pid = parts[0] == Substring(pidNamespace) ? Int32(parts[1]) : nil
        default: pid = nil
        }
        // No supervisor has pid 0 or less: such a name is nobody's to judge (Int32 reads "+5" too: not ours).
        guard let pid, pid > 0, parts.last?.allSatisfy(\.isNumber) == true else { return nil }
        return pid
    }

    /// The `hyperglass-NAMESPACE-PID` cgroups beside ours of supervisors that are gone (SIGKILLed: no exit
    /// ran): what their workers left is killed and the cgroups removed, so it cannot hold the addresses we
    /// are about to bind. Returns how many processes were left there, for the log. Only at start, before `setUp`.
    static func removeAbandoned() -> Int {
        guard let mount = CgroupLimits.unifiedMount(), let path = CgroupLimits.membership().unified else { return 0 }
        let own = mount + (path == "/" ? "" : path)
        // Whether a pid is gone is read in /proc: only when it shows our pid namespace (under `unshare --pid`
        // without --mount-proc it shows the parent's, where our pids name other processes, or none).
        guard access(own, W_OK) == 0, procShowsOurPids else { return 0 }
        var killed = 0
        for name in entries(of: own) where name.hasPrefix("hyperglass-") {
            // Gone, or a zombie its parent has not reaped yet (a SIGKILLed supervisor's parent may be slow to); or
            // ours by its name, which, before our own is made, means a predecessor's that had our pid (pids wrap).
            guard let pid = creator(ofSharedBase: name), pid == getpid() || Strays.stat(pid).map({ $0.state == "Z" }) ?? true else { continue }
            let directory = own + "/" + name
            let workers = entries(of: directory).filter { $0.hasPrefix("worker-") }
            let members = workers.map { ((try? Sys.readFile("\(directory)/\($0)/cgroup.procs", limit: 1 << 16)) ?? "").split(separator: "\n") }
            // A process of a pid namespace we cannot see is listed as 0: its supervisor is not ours to judge (an
            // earlier build's `hyperglass-PID` names no namespace, and that pid means nothing here).
            if members.joined().contains("0") { continue }
            for (worker, members) in zip(workers, members) {
                killed += members.count
                write("1", to: "\(directory)/\(worker)/cgroup.kill")
                var tries = 0
                while rmdir("\(directory)/\(worker)") != 0, errno == EBUSY, tries < 100 {
                    tries += 1
                    usleep(10_000)
                }
            }
            rmdir(directory)
        }
        return killed
    }

    /// `/proc/self` names our pid: this /proc is our pid namespace's.
    private static var procShowsOurPids: Bool {
        var buffer = [CChar](repeating: 0, count: 32)
        let n = readlink("/proc/self", &buffer, buffer.count - 1)
        return n > 0 && String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) == String(getpid())
    }

    private static func entries(of path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var result: [String] = []
        while let entry = readdir(dir) {
            result.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return result
    }

    /// Worker cgroups not in the table (a worker whose end was still awaited when the loop stopped).
    private func leftovers() -> [String] {
        WorkerCgroups.entries(of: base).filter { $0.hasPrefix("worker-") }.map { base + "/" + $0 }
    }

    private func members(_ directory: String) -> [Int32] {
        ((try? Sys.readFile(directory + "/cgroup.procs", limit: 1 << 20)) ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// Reads `cgroup.events` from its start; reading also re-arms epoll for the next change.
    static func isPopulated(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        return String(decoding: buffer[0..<n], as: UTF8.self).contains("populated 1")
    }

    static func makeDirectory(_ path: String) -> Bool { mkdir(path, 0o755) == 0 || errno == EEXIST }

    @discardableResult
    static func write(_ text: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return text.withCString { Glibc.write(fd, $0, strlen($0)) } >= 0
    }
}
