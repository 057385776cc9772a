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
    /// Start the preflight of the binary at `path` (nil: the installed one), `PATH upgrade-check`, without
    /// waiting for it (Supervisor/UpgradeCheck.swift); report `upgradeChecked` when it says yes, `upgradeFailed`
    /// when it says no, times out or cannot be run.
    case checkUpgrade(path: String?, for: Requester)
    /// End the preflight under way (its process group killed, the check reaped by pid): its answer no longer matters.
    case cancelUpgradeCheck
    /// The preflight said yes and the pool is at rest: hand the pool's state over and exec `path` in this process
    /// (Supervisor/Upgrade.swift); report `upgradeFailed` when it cannot be done. On success nothing follows here.
    case execUpgrade(path: String, newVersion: String, wait: Bool, for: Requester)
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
