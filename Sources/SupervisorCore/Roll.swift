/// A rolling replacement of workers: up to `max_surge` successors start at once beside the current workers,
/// and only once one has been ready for `min_ready` is its predecessor drained. Ready capacity never drops.
/// A successor that is ready and settling no longer counts against `max_surge`: the next start overlaps it.
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
    /// Slots whose successor is starting or settling.
    public internal(set) var active: Set<Int> = []
    public internal(set) var done = 0
    /// New workers of this roll that failed before they settled: 0 while it goes well; a rollback
    /// carries its reload's count. (In the upgrade state with the other fields.)
    public internal(set) var failed = 0
    /// Why a rollback is happening: the failure its reload ends with.
    public internal(set) var failure: String? = nil
    /// What the reload could not apply (settings only a restart changes), for its replies.
    public internal(set) var note: String? = nil
    /// A reload whose every slot took over is done only when its new workers, serving alone, left no
    /// connection waiting `backlog_wait` until this instant (Pool+Backlog.swift).
    public internal(set) var provingUntil: Instant? = nil
    /// The next look at the listeners' queues while proving.
    public internal(set) var backlogLookDue: Instant? = nil

    init(id: Int, kind: Kind, release: Int, fallback: Int, slots: [Int], at now: Instant, failure: String? = nil, failed: Int = 0) {
        self.id = id
        self.kind = kind
        self.release = release
        self.fallback = fallback
        self.total = slots.count
        self.queue = slots
        self.startedAt = now
        self.failure = failure
        self.failed = failed
    }
}

/// Where a roll stands, as `hyperglassctl reload --wait` and `STATUS=` show it (like `kubectl rollout status`):
/// "rolling: 9/16 new, 2 starting, 2 settling, 0 failed".
public struct RollProgress: Equatable, Sendable {
    public let id: Int
    public let kind: Roll.Kind
    public let total: Int
    /// Slots whose new worker took over.
    public let done: Int
    /// New workers started and not ready yet.
    public let starting: Int
    /// New workers ready and waiting out `min_ready` before they take over.
    public let settling: Int
    public let failed: Int
    /// Every slot took over; the new workers are being watched taking connections (`backlog_wait`).
    public let proving: Bool

    public var summary: String {
        let verb = kind == .rollback ? "rolling back" : "rolling"
        let noun = kind == .rollback ? "restored" : "new"
        if proving { return "\(verb): \(done)/\(total) \(noun), checking that they take connections" }
        return "\(verb): \(done)/\(total) \(noun), \(starting) starting, \(settling) settling, \(failed) failed"
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
