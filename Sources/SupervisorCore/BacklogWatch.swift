/// One listening socket's accept queue, as the shell read it from the kernel.
public struct ListenerBacklog: Equatable, Sendable {
    public let address: String
    /// Connections established and waiting for a worker to accept them.
    public let waiting: Int
    /// How long the oldest of them has waited, when the kernel tells (TCP: since the client last sent
    /// anything, a lower bound); nil when it cannot (a unix listener), and the watch times the queue itself.
    public let oldestWait: Duration?
    /// The listen backlog: the queue's length when full; nil when the kernel did not say.
    public let limit: Int?
    /// The connections on the listener that a worker took (TCP: socket cookies, of accepted ones and of
    /// those closed since, TIME_WAIT included); nil when the look did not tell (a unix listener, no dump).
    public let taken: Set<UInt64>?
    /// Which connections wait, when the kernel tells no age but tells them apart (a unix listener: each
    /// one's client end); the watch then times each from the first look that saw it.
    public let queued: Set<UInt64>?

    public init(address: String, waiting: Int, oldestWait: Duration?, limit: Int? = nil, taken: Set<UInt64>? = nil, queued: Set<UInt64>? = nil) {
        self.address = address
        self.waiting = waiting
        self.oldestWait = oldestWait
        self.limit = limit
        self.taken = taken
        self.queued = queued
    }
}

/// Connections that wait on a listener and no worker takes: the one failure `/proc` readiness cannot see
/// (a worker that polls the socket and never accepts, or every worker wedged), and the one that matters
/// most to clients. A healthy pool accepts within milliseconds, even a busy one within a request's time.
public struct BacklogStall: Equatable, Sendable, CustomStringConvertible {
    public let address: String
    public let waited: Duration
    public let waiting: Int

    public var description: String {
        "\(waiting) connection\(waiting == 1 ? "" : "s") on \(address) waiting unaccepted, the oldest for \(waited.spoken) (backlog_wait): no worker takes them"
    }
}

/// What the listeners' accept queues showed at the last look. Sampled on demand (a status, health or
/// `/readyz` request, and while a reload proves its workers), never on a timer of its own: an idle pool
/// stays asleep.
public struct BacklogWatch: Equatable, Sendable {
    public private(set) var listeners: [ListenerBacklog] = []
    public private(set) var sampledAt: Instant? = nil
    /// For a listener whose kernel gives no age nor tells its connections apart: since when every look
    /// found its queue non-empty.
    private var waitingSince: [String: Instant] = [:]
    /// For a listener whose kernel tells its queued connections apart but gives no age: the look that first
    /// saw each one still waiting. A busy queue that never empties holds new connections at every look.
    private var firstSeen: [String: [UInt64: Instant]] = [:]
    /// The connections taken at the last look that told them, per listener.
    private var takenBefore: [String: Set<UInt64>] = [:]
    /// Per listener: the look since which no look saw a connection taken that the look before it had not.
    private var takingNoneSince: [String: Instant] = [:]

    public init() {}

    mutating func record(_ samples: [ListenerBacklog], at now: Instant) {
        for sample in samples {
            if sample.waiting == 0 { waitingSince[sample.address] = nil }
            else if waitingSince[sample.address] == nil { waitingSince[sample.address] = now }
            if let queued = sample.queued, sample.waiting > 0 {
                let seen = firstSeen[sample.address] ?? [:]
                firstSeen[sample.address] = Dictionary(uniqueKeysWithValues: queued.map { ($0, seen[$0] ?? now) })
            } else {
                firstSeen[sample.address] = nil
            }
            // A look that does not tell the connections taken leaves the account as it was.
            guard let taken = sample.taken else { continue }
            if let before = takenBefore[sample.address], taken.isSubset(of: before), takingNoneSince[sample.address] != nil {
                // Nothing taken since the look before: the streak goes on.
            } else {
                takingNoneSince[sample.address] = now
            }
            takenBefore[sample.address] = taken
        }
        listeners = samples
        sampledAt = now
    }

    /// Forgets which connections were taken: the next look that tells them starts the account afresh.
    mutating func forgetTaken() {
        takenBefore = [:]
        takingNoneSince = [:]
    }

    /// How long `listener`'s oldest waiting connection had waited at the last look; nil when none waited.
    public func wait(of listener: ListenerBacklog) -> Duration? {
        guard listener.waiting > 0 else { return nil }
        if let age = listener.oldestWait { return age }
        if let seen = firstSeen[listener.address], let sampledAt {
            return seen.values.min().map { sampledAt - $0 } ?? .zero
        }
        guard let since = waitingSince[listener.address], let sampledAt else { return nil }
        return sampledAt - since
    }

    /// The listener whose connections have waited longest, if that is `limit` or more; nil with `limit` 0.
    public func stall(limit: Duration) -> BacklogStall? {
        guard limit > .zero else { return nil }
        let stalls = listeners.compactMap { listener in
            wait(of: listener).flatMap { $0 >= limit ? BacklogStall(address: listener.address, waited: $0, waiting: listener.waiting) : nil }
        }
        return stalls.max { $0.waited < $1.waited }
    }

    /// The stall whose workers also took no connection for `limit` (looks that tell the connections taken saw
    /// none new over that long): a saturated pool leaves connections waiting seconds, yet takes one every
    /// request's time; only a pool that takes none is broken. A listener whose looks do not tell (a unix one)
    /// is judged by the wait alone.
    public func stallTakingNone(limit: Duration) -> BacklogStall? {
        guard limit > .zero, let sampledAt else { return nil }
        let stalls = listeners.compactMap { listener -> BacklogStall? in
            guard let waited = wait(of: listener), waited >= limit else { return nil }
            if listener.taken != nil {
                guard let since = takingNoneSince[listener.address], sampledAt - since >= limit else { return nil }
            }
            return BacklogStall(address: listener.address, waited: waited, waiting: listener.waiting)
        }
        return stalls.max { $0.waited < $1.waited }
    }

    /// Whether a look this recent may stand for a new one (a flood of probes costs one look per interval).
    public func isFresh(at now: Instant, within interval: Duration = .milliseconds(100)) -> Bool {
        sampledAt.map { now - $0 < interval } ?? false
    }
}
