/// Counters of what happened to the pool since the supervisor started. They live in the core beside the
/// pool, so a reload (which keeps the pool and changes its policy) never resets them, and they are
/// counted from the same `PoolEvent`s the log and the journal show.
public struct PoolCounters: Equatable, Sendable {
    /// Workers that failed, by why.
    public private(set) var failures: [FailureReason: UInt64] = [:]
    /// Replacements started because a worker failed, by why (a crash-looping slot keeps adding here).
    public private(set) var restarts: [FailureReason: UInt64] = [:]
    /// Workers started (exec succeeded), for any reason: start, restart, roll, scale-up.
    public private(set) var spawns: UInt64 = 0
    /// Rolls that ended, by kind and outcome.
    public private(set) var rolls: [RollOutcomeKey: UInt64] = [:]
    public private(set) var rollSeconds = Histogram.rollSeconds
    public private(set) var probeSeconds = Histogram.probeSeconds
    public private(set) var probeFailures: UInt64 = 0

    public struct RollOutcomeKey: Hashable, Sendable {
        public let kind: Roll.Kind
        public let succeeded: Bool
    }

    public init() {}

    /// The counters an upgraded supervisor carries on from (UpgradeState.swift).
    init(failures: [FailureReason: UInt64], restarts: [FailureReason: UInt64], spawns: UInt64, rolls: [RollOutcomeKey: UInt64],
         rollSeconds: Histogram, probeSeconds: Histogram, probeFailures: UInt64) {
        self.failures = failures
        self.restarts = restarts
        self.spawns = spawns
        self.rolls = rolls
        self.rollSeconds = rollSeconds
        self.probeSeconds = probeSeconds
        self.probeFailures = probeFailures
    }

    /// Counts one `handle` call: the event that came in and the actions that went out.
    mutating func record(_ event: Event, _ actions: [Action]) {
        if case let .probed(_, result) = event {
            probeSeconds.observe(result.latency.seconds)
            if !result.ok { probeFailures += 1 }
        }
        for case let .report(report) in actions { record(report) }
    }

    mutating func record(_ report: PoolEvent) {
        switch report.kind {
        case .spawned: spawns += 1
        case .exited, .spawnFailed, .watchdog:
            if let reason = report.reason { failures[reason, default: 0] += 1 }
        case .unhealthy:
            // An unhealthy worker's replacement starts at once, beside it: a failure and a restart.
            if let reason = report.reason {
                failures[reason, default: 0] += 1
                restarts[reason, default: 0] += 1
            }
        case .restart:
            if let reason = report.reason { restarts[reason, default: 0] += 1 }
        case .rollEnded:
            guard let kind = report.roll, let succeeded = report.succeeded else { return }
            rolls[RollOutcomeKey(kind: kind, succeeded: succeeded), default: 0] += 1
            if let duration = report.duration { rollSeconds.observe(duration.seconds) }
        // A kill or a failed probe is counted by what follows it: the exit, or the unhealthy verdict.
        case .ready, .crashLoop, .rollStarted, .scaled, .stopping, .killed, .probeFailed, .upgraded: break
        }
    }
}
