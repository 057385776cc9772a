/// Something the pool did or saw, with the fields an operator filters on: one record feeds the log line,
/// the journal entry (`WORKER_ID=3 EVENT=exited REASON=crash`), the counters of `/metrics` and the
/// `hyperglassctl events` stream, so the three can never disagree.
public struct PoolEvent: Equatable, Sendable {
    /// `EVENT=` in the journal, `"event"` in `hyperglassctl events`.
    public enum Kind: String, Sendable, CaseIterable {
        case spawned, ready, exited, restart, unhealthy
        case spawnFailed = "spawn-failed"
        /// A failed health probe, below the threshold that makes the worker unhealthy.
        case probeFailed = "probe-failed"
        /// The supervisor SIGKILLed a worker: not ready in time, or it outlived its graceful timeout.
        case killed
        case watchdog
        case crashLoop = "crash-loop"
        case rollStarted = "roll-started"
        case rollEnded = "roll-ended"
        case scaled, stopping
        /// The supervisor's program was replaced in place (`hyperglassctl upgrade`): same pid, same workers.
        case upgraded
    }

    public var kind: Kind
    public var level: LogLevel
    /// The sentence the log shows; the fields below say the same thing for machines.
    public var message: String
    public var slot: Int? = nil
    public var pid: Int32? = nil
    public var generation: Int? = nil
    /// Why a worker failed or is being replaced.
    public var reason: FailureReason? = nil
    /// For roll events: which kind of roll, and (when it ended) whether it succeeded and how long it took.
    public var roll: Roll.Kind? = nil
    public var succeeded: Bool? = nil
    public var duration: Duration? = nil

    public init(_ kind: Kind, _ level: LogLevel, _ message: String, slot: Int? = nil, pid: Int32? = nil, generation: Int? = nil,
                reason: FailureReason? = nil, roll: Roll.Kind? = nil, succeeded: Bool? = nil, duration: Duration? = nil) {
        self.kind = kind
        self.level = level
        self.message = message
        self.slot = slot
        self.pid = pid
        self.generation = generation
        self.reason = reason
        self.roll = roll
        self.succeeded = succeeded
        self.duration = duration
    }

    /// The structured fields, in a fixed order, as journal field names (values are plain text).
    public var fields: [(name: String, value: String)] {
        var result: [(String, String)] = [("EVENT", kind.rawValue)]
        if let slot { result.append(("WORKER_ID", String(slot))) }
        if let pid { result.append(("WORKER_PID", String(pid))) }
        if let generation { result.append(("GENERATION", String(generation))) }
        if let reason { result.append(("REASON", reason.rawValue)) }
        if let roll { result.append(("ROLL", roll.rawValue)) }
        if let succeeded { result.append(("OUTCOME", succeeded ? "success" : "failure")) }
        if let duration { result.append(("DURATION_USEC", String(max(0, duration.nanoseconds / 1000)))) }
        return result
    }
}

/// Why a worker failed, in the words `REASON=` and the `reason` label use.
public enum FailureReason: String, Sendable, CaseIterable, Comparable {
    /// It exited (or was killed by a signal) without being asked to.
    case crash
    /// It could not start (fork or exec failed: the command is missing, not executable, or the system
    /// is out of processes), or exited before it was ready, or within `min_ready` of it.
    case failedStart = "failed-start"
    /// It did not become ready within `ready_timeout`.
    case readyTimeout = "ready-timeout"
    /// It missed its watchdog (or sent WATCHDOG=trigger).
    case watchdog
    /// Its HTTP health probes failed `health_failures` times in a row.
    case probe
    /// It used more than `max_memory`.
    case memory
    /// The kernel's OOM killer ended it (its cgroup's memory.max, the service's, or the machine's memory).
    case oom

    public static func < (a: FailureReason, b: FailureReason) -> Bool { a.rawValue < b.rawValue }
}
