/// One live worker process, from spawn until it is reaped.
public struct WorkerProcess: Equatable, Sendable {
    public let pid: Int32
    public let slot: Int
    public let generation: Int
    /// The configuration release it was started with.
    public let release: Int
    public let startedAt: Instant
    public internal(set) var readyAt: Instant? = nil
    /// Set once the supervisor asked the worker to stop; it is killed at `killAt` if still alive.
    public internal(set) var killAt: Instant? = nil
    public internal(set) var killed = false
    /// Why the supervisor killed it, when it did so before asking nicely (e.g. "not ready within 60s").
    public internal(set) var killReason: String? = nil
    /// The same, for counters and the journal's REASON=.
    public internal(set) var killCause: FailureReason? = nil
    /// The worker's own STATUS= text.
    public internal(set) var status: String? = nil
    public internal(set) var health = WorkerHealth()

    public var isReady: Bool { readyAt != nil && killAt == nil && !killed }
    public var isStopping: Bool { killAt != nil || killed }

    public var state: String {
        if killed { return "killing" }
        if killAt != nil { return killReason == nil ? "draining" : "aborting" }
        return readyAt == nil ? "starting" : "ready"
    }
}

/// A stable worker id (0..N-1), like a systemd template instance: workers come and go, slots stay.
public struct Slot: Equatable, Sendable {
    public let id: Int
    /// The slot's current worker, if one is running.
    public internal(set) var pid: Int32? = nil
    public internal(set) var generation = 0
    /// The configuration release its worker runs, and a restart would run.
    public internal(set) var release: Int
    /// During a roll: the next generation, starting beside the current worker until it is ready.
    public internal(set) var successor: Successor? = nil
    /// When a restart is due after a failure.
    public internal(set) var restartAt: Instant? = nil
    /// Consecutive unexpected exits; reset once a worker stayed ready for `backoff.reset`.
    public internal(set) var failures = 0
    public internal(set) var restarts = 0
    public internal(set) var lastExit: ExitStatus? = nil
    /// The last failure in words: "exit status 1 before ready".
    public internal(set) var lastFailure: String? = nil

    public init(id: Int, release: Int = 1) {
        self.id = id
        self.release = release
    }
}

/// Where the pool is in its life.
public enum Phase: Equatable, Sendable {
    /// Until every desired worker has been ready once; READY=1 goes to systemd at the end.
    case starting
    case running
    /// Draining every worker; exit with `exitCode` when the last one is gone.
    case stopping(exitCode: Int32)
    case exited

    /// Starting or running: workers are kept alive, restarted and replaced; after that, only drained.
    public var isActive: Bool { self == .starting || self == .running }
}
