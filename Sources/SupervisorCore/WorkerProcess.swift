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
    /// Why it counts as ready, and when readiness is next looked for.
    public internal(set) var readiness = WorkerReadiness()

    public var isReady: Bool { readyAt != nil && killAt == nil && !killed }
    public var isStopping: Bool { killAt != nil || killed }

    public var state: String {
        if killed { return "killing" }
        if killAt != nil { return killReason == nil ? "draining" : "aborting" }
        return readyAt == nil ? "starting" : "ready"
    }
}
