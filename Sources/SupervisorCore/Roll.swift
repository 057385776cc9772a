/// A rolling replacement of workers, `max_surge` slots at a time: each slot's successor starts beside
/// the current worker, and only once it is ready is the old one drained. Ready capacity never drops.
public struct Roll: Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// To a new configuration release (SIGHUP, `hyperglassctl reload`).
        case reload
        /// Fresh workers on the same release (`hyperglassctl restart`).
        case restart
        /// Back to the previous release after a reload failed part-way.
        case rollback
    }

    /// Shared by a reload and the rollback that may follow it, so one waiter hears one outcome.
    public let id: Int
    public let kind: Kind
    /// The release successors run (for `restart`, each slot keeps its own).
    public let release: Int
    /// The release a failed reload goes back to.
    public let fallback: Int
    public let total: Int
    public let startedAt: Instant
    /// Slots still to replace, in order.
    public internal(set) var queue: [Int]
    /// Slots whose successor is starting.
    public internal(set) var active: Set<Int> = []
    public internal(set) var done = 0
    /// Why a rollback is happening: the failure its reload ends with.
    public internal(set) var failure: String? = nil
    /// What the reload could not apply (settings only a restart changes), for its replies.
    public internal(set) var note: String? = nil

    init(id: Int, kind: Kind, release: Int, fallback: Int, slots: [Int], at now: Instant, failure: String? = nil) {
        self.id = id
        self.kind = kind
        self.release = release
        self.fallback = fallback
        self.total = slots.count
        self.queue = slots
        self.startedAt = now
        self.failure = failure
    }

    var gerund: String {
        switch kind {
        case .reload: "reloading"
        case .restart: "restarting"
        case .rollback: "rolling back"
        }
    }
}

/// How a roll ended, for `hyperglassctl reload --wait` and `status`.
public struct RollOutcome: Equatable, Sendable {
    public let id: Int
    public let kind: Roll.Kind
    public let succeeded: Bool
    public let summary: String
    /// The roll's note, if it had one.
    public var note: String? = nil
}

/// The next generation of a slot, started beside the current worker during a roll.
public struct Successor: Equatable, Sendable {
    public let generation: Int
    public let release: Int
    public internal(set) var pid: Int32? = nil
}
