import CHyperglass
import Glibc
import SupervisorCore

/// Starts worker processes the way systemd socket activation would start a service:
/// the listeners at fds 3.., LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, NOTIFY_SOCKET pointing at us.
struct Spawner {
    /// What a configuration release runs: argv (argv[0] absolute, resolved when the config was loaded) and environment.
    struct Release {
        let command: [String]
        /// The supervisor's environment minus what belongs to systemd and us, plus the configured entries.
        let environment: [String]
        /// WATCHDOG_USEC for the workers, if they have a watchdog.
        let watchdog: Duration?
        /// Whether each worker gets a private socket (fd name `health`) for the supervisor's probes.
        let healthSocket: Bool
    }

    /// A forked worker whose exec result is still to come on `reportFD` (see `hg_spawn_start`), and its
    /// private sockets.
    struct Started {
        let pid: Int32
        let reportFD: Int32
        let sockets: WorkerSockets.Prepared
    }

    let listenerFDs: [Int32]
    /// Each worker's own notify and health sockets.
    let sockets: WorkerSockets
    /// Each worker's cgroup, or the strays it leaves (WorkerTrees.swift).
    let trees: WorkerTrees
    private let inherited: [String]

    /// Variables describing the supervisor's own relationship with systemd; a worker must not see them.
    static let privateVariables: Set<String> = [
        "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", "HYPERGLASS_WORKER_ID",
    ]

    init(listenerFDs: [Int32], sockets: WorkerSockets, inherited: [String], trees: WorkerTrees = WorkerTrees(cgroups: nil)) {
        self.listenerFDs = listenerFDs
        self.sockets = sockets
        self.trees = trees
        self.inherited = inherited
    }

    /// What a worker of a release with these settings runs.
    func release(_ settings: Settings) -> Release {
        Release(command: settings.command, environment: environment(for: settings), watchdog: settings.health.workerWatchdog,
                healthSocket: settings.health.probePath != nil)
    }

    /// The environment a worker of `settings` gets: the supervisor's minus what belongs to systemd and us,
    /// plus the configured entries (which win over inherited ones of the same name).
    func environment(for settings: Settings) -> [String] {
        Spawner.environment(inherited: inherited, settings: settings)
    }

    static func environment(inherited: [String], settings: Settings) -> [String] {
        let configured = settings.environment
        let overridden = Set(configured.map { String($0.prefix { $0 != "=" }) })
        return inherited.filter { entry in
            let name = String(entry.prefix { $0 != "=" })
            return !Spawner.privateVariables.contains(name) && !overridden.contains(name)
        } + configured
    }

    /// Forks one worker and returns at once; whether its exec succeeded arrives later on `reportFD`.
    /// `settings` are those of the release the pool asked for (`pool.releases`).
    func spawn(slot: Int, generation: Int, release number: Int, settings: Settings?) throws(SystemError) -> Started {
        guard let settings else { throw SystemError(operation: "start worker \(slot): internal: release \(number) is unknown", errno: EINVAL) }
        let release = release(settings)
        let command = release.command
        var fds = listenerFDs
        var names = Array(repeating: "http", count: listenerFDs.count)
        // Each worker's own socket for probes (through the shared socket a probe would reach a random
        // worker) and for its notifications (so the socket a message arrives on names the worker).
        let own = try sockets.prepare(slot: slot, generation: generation, health: release.healthSocket)
        if let fd = own.healthFD {
            fds.append(fd)
            names.append("health")
        }
        var env = release.environment + [
            "LISTEN_FDS=\(fds.count)",
            "LISTEN_FDNAMES=\(names.joined(separator: ":"))",
            "NOTIFY_SOCKET=\(own.notifyAddress)",
            "HYPERGLASS_WORKER_ID=\(slot)",
        ]
        if let watchdog = release.watchdog { env.append("WATCHDOG_USEC=\(watchdog.nanoseconds / 1000)") }
        // The child writes its own pid into these between fork and exec; the padding is room for the digits.
        let pidIndex = env.count
        env.append("LISTEN_PID=" + String(repeating: " ", count: 24))
        if release.watchdog != nil { env.append("WATCHDOG_PID=" + String(repeating: " ", count: 24)) }
        let cgroup: (directory: String, procsFD: Int32)?
        do { cgroup = try trees.cgroups?.prepare(slot: slot) } catch {
            sockets.discard(own)
            throw error
        }
        defer { if let cgroup { close(cgroup.procsFD) } }
        // Where no memory controller is enabled, start and check-config have said memory_max is not enforced.
        if let cgroup { _ = trees.cgroups?.limit(cgroup.directory, memoryMax: settings.memoryMax, memoryHigh: settings.health.maxMemory) }
        var error: Int32 = 0
        var reportFD: Int32 = -1
        let pid = withCStrings(command) { argv in
            withCStrings(env) { envp in
                hg_spawn_start_in(argv[0], argv, envp, Int32(pidIndex), fds, Int32(fds.count), cgroup?.procsFD ?? -1, &reportFD, &error)
            }
        }
        guard pid > 0 else {
            sockets.discard(own)
            if let cgroup { rmdir(cgroup.directory) }
            throw SystemError(operation: "start \(command[0])", errno: error)
        }
        if let cgroup { trees.cgroups?.adopt(cgroup.directory, pid: pid) }
        // Adopted at once: the pid is known, and a child whose exec fails releases them when it is reaped.
        sockets.adopt(own, pid: pid)
        return Started(pid: pid, reportFD: reportFD, sockets: own)
    }
}

/// A NULL-terminated char* array valid for the duration of `body`.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { buffer in
        body(UnsafeMutablePointer(mutating: buffer.baseAddress!))
    }
}
