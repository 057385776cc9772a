/// What the shell must do next. Imperative.
public enum Action: Equatable, Sendable {
    /// Start a worker in this slot (fork/exec) with the command and environment of `release`,
    /// then report `spawned` or `spawnFailed`.
    case spawn(slot: Int, generation: Int, release: Int = 1)
    /// Send a signal to a worker's whole process group.
    case signal(pid: Int32, Signal)
    /// Send these notices to systemd in one datagram; a no-op outside systemd.
    case notifySystemd([SystemdNotice])
    /// GET the health path on this worker's own socket; report `probed`.
    case probe(pid: Int32)
    /// Look in /proc whether these starting workers accept on the listening sockets; report `acceptingSampled` for each.
    case sampleAccepting([Int32])
    /// Read the memory of these workers; report `memorySampled`.
    case sampleMemory([Int32])
    case log(LogLevel, String)
    /// Something happened that operators filter and count: log it with its fields (journal: `EVENT=`,
    /// `WORKER_ID=`, `REASON=`...), and tell `hyperglassctl events` followers. The pool's counters already have it.
    case report(PoolEvent)
    /// Answer the control client on this connection (the intent's outcome).
    case reply(to: Int32, Reply)
    /// Read and validate the configuration again (the files and flags `start` read); report
    /// `configurationRead` or `configurationRejected` for `requester`.
    case readConfiguration(for: Requester)
    /// Check the binary at `path` (nil: the installed one) and exec it in this process with the pool's state
    /// (Supervisor/Upgrade.swift); report `upgradeFailed` when it cannot be done. On success nothing follows here.
    case execUpgrade(path: String?, wait: Bool, for: Requester)
    /// Measure the listeners' accept queues and these workers' CPU (`starting`: workers asked for, not
    /// exec'd yet); report `loadSampled`.
    case sampleLoad(workers: [Int32], starting: Int)
    /// Look at the listeners' accept queues; report `backlogSampled`.
    case sampleBacklog
    /// Autoscaling rests: forget the CPU baselines and watch the listeners for one connection (`loadArrived`).
    case watchForLoad
    /// All workers are gone: close sockets and exit with this code.
    case exit(code: Int32)
}

/// Levels map onto syslog priorities so journald can tell them apart.
public enum LogLevel: Int, Sendable, Comparable {
    case error = 3, warning = 4, notice = 5, info = 6, debug = 7

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue > b.rawValue }
}
