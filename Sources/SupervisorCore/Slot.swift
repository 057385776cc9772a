/// A stable worker id (0..N-1), like a systemd template instance: workers come and go, slots stay.
public struct Slot: Equatable, Sendable {
    public let id: Int
    /// The slot's current worker, if one is running.
    public internal(set) var pid: Int32? = nil
    public internal(set) var generation = 0
    /// The highest generation a spawn was asked for (`Pool.newGeneration`): a start whose answer comes late
    /// keeps its number, which no later start of this slot reuses.
    var askedGeneration = 0
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
