import Testing
@testable import SupervisorCore

/// Drives a `Pool` the way the shell's event loop does, with a fake clock and fake processes.
///
/// Like `EventLoop.dispatch`, actions are performed in order from one queue and a `.spawn` is
/// answered at once with `.spawned` (incrementing fake pids) or `.spawnFailed`, whose own
/// actions join the end of the queue. Time only moves when a test says so; `advance(by:)` fires
/// `.deadlineReached` at each deadline the pool asked for on the way, as the timerfd would.
struct PoolDriver {
    private(set) var pool: Pool
    private(set) var now: Instant
    private(set) var nextPid: Int32
    /// Every action so far, in order, follow-ups included.
    private(set) var history: [Action] = []
    /// Decides each spawn: nil means it succeeds, a string is the reason it failed.
    var spawnOutcome: (_ slot: Int, _ generation: Int) -> String? = { _, _ in nil }
    /// Decides which spawns hit a resource limit (`spawnLimited`, EMFILE say): the reason, or nil.
    var spawnLimit: (_ slot: Int, _ generation: Int) -> String? = { _, _ in nil }
    /// Answers each `sampleBacklog`: the listeners' queues as the shell would read them at that moment.
    var listenerBacklog: (_ now: Instant) -> [ListenerBacklog] = { _ in [ListenerBacklog(address: "127.0.0.1:8001", waiting: 0, oldestWait: nil)] }
    /// Sees every single `handle` call: the event, its actions, the pool just after, and the clock.
    var observer: (_ event: Event, _ actions: [Action], _ pool: Pool, _ now: Instant) -> Void = { _, _, _, _ in }
    /// Hears of a deadline that did not move after `deadlineReached`: the shell's timerfd would fire at
    /// once, forever. The clock stops advancing there, so a test fails instead of hanging.
    var onStall: (_ message: String) -> Void = { Issue.record(Comment(rawValue: $0)) }
    /// More deadlines than this in one `advance(by:)` is a runaway loop, whatever its cause.
    var maxDeadlinesPerAdvance = 10_000

    static let epoch = Instant(nanoseconds: 1_000_000_000_000)

    init(desired: Int = 1, policy: PoolPolicy = .testDefault, seed: UInt64 = 0x5EED, firstPid: Int32 = 100, autoscaler: Autoscaler? = nil) {
        pool = Pool(desired: desired, policy: policy, seed: seed, autoscaler: autoscaler)
        now = Self.epoch
        nextPid = firstPid
    }

    /// Sends `started` and answers the spawns: the usual first step of a test.
    @discardableResult
    mutating func start() -> [Action] { send(.started) }

    /// Whether a `.spawn` waits in `waitingSpawns` until `answerSpawn` instead of being answered at once: the
    /// real loop forks on a later turn and learns the exec result later still, with other events between.
    var spawnsAnsweredLater = false
    /// Spawns asked for and not answered yet (`spawnsAnsweredLater`), oldest first.
    private(set) var waitingSpawns: [(slot: Int, generation: Int)] = []

    /// Feeds one event and performs what the pool asks; returns every action of this dispatch.
    @discardableResult
    mutating func send(_ event: Event) -> [Action] {
        var pending = handle(event)
        var index = 0
        while index < pending.count {
            if case let .spawn(slot, generation, _) = pending[index] {
                if spawnsAnsweredLater { waitingSpawns.append((slot, generation)) } else { pending += handle(spawnAnswer(slot: slot, generation: generation)) }
            }
            if case .sampleBacklog = pending[index] { pending += handle(.backlogSampled(listenerBacklog(now))) }
            index += 1
        }
        history += pending
        return pending
    }

    /// Answers the waiting spawn at `index` (exec'd, or failed as `spawnOutcome` says).
    @discardableResult
    mutating func answerSpawn(at index: Int) -> [Action] {
        let (slot, generation) = waitingSpawns.remove(at: index)
        return send(spawnAnswer(slot: slot, generation: generation))
    }

    private mutating func spawnAnswer(slot: Int, generation: Int) -> Event {
        if let reason = spawnLimit(slot, generation) { return .spawnLimited(slot: slot, generation: generation, reason: reason) }
        if let reason = spawnOutcome(slot, generation) { return .spawnFailed(slot: slot, generation: generation, reason: reason) }
        defer { nextPid += 1 }
        return .spawned(slot: slot, generation: generation, pid: nextPid)
    }

    private mutating func handle(_ event: Event) -> [Action] {
        let actions = pool.handle(event, at: now)
        observer(event, actions, pool, now)
        return actions
    }

    /// Moves the clock forward, firing `deadlineReached` at every deadline that falls due on the way.
    @discardableResult
    mutating func advance(by duration: Duration) -> [Action] {
        let target = now + duration
        var actions: [Action] = []
        var fired = 0
        while let deadline = pool.nextDeadline, deadline <= target {
            if deadline > now { now = deadline }
            actions += send(.deadlineReached)
            fired += 1
            if stalled() { return actions }
            if fired >= maxDeadlinesPerAdvance {
                onStall("more than \(maxDeadlinesPerAdvance) deadlines within \(duration.spoken) at \(now)")
                return actions
            }
        }
        now = target
        return actions
    }

    /// Jumps to the pool's next deadline and fires it; nil if the pool asked for none.
    mutating func advanceToNextDeadline() -> [Action]? {
        guard let deadline = pool.nextDeadline else { return nil }
        if deadline > now { now = deadline }
        let actions = send(.deadlineReached)
        _ = stalled()
        return actions
    }

    /// Whether the deadline just fired is still due: reports it and says so.
    private func stalled() -> Bool {
        guard let next = pool.nextDeadline, next <= now else { return false }
        onStall("after deadlineReached at \(now) the next deadline is \(next), not in the future: the event loop would spin")
        return true
    }

    // MARK: - Fake processes

    /// The pid running in a slot now.
    func pid(ofSlot slot: Int) -> Int32? { pool.slots.indices.contains(slot) ? pool.slots[slot].pid : nil }

    /// The current worker of `slot` exits with `status`.
    @discardableResult
    mutating func exit(slot: Int, status: ExitStatus = .exited(1)) -> [Action] {
        guard let pid = pid(ofSlot: slot) else { preconditionFailure("slot \(slot) has no worker to exit") }
        return send(.exited(pid: pid, status: status))
    }

    /// The current worker of `slot` sends READY=1.
    @discardableResult
    mutating func ready(slot: Int) -> [Action] {
        guard let pid = pid(ofSlot: slot) else { preconditionFailure("slot \(slot) has no worker to be ready") }
        return send(.notified(pid: pid, message: NotifyMessage(ready: true)))
    }

    /// Every slot's worker sends READY=1.
    @discardableResult
    mutating func readyAll() -> [Action] {
        var actions: [Action] = []
        for slot in pool.slots.indices where pid(ofSlot: slot) != nil { actions += ready(slot: slot) }
        return actions
    }

    /// Every worker process exits (as after SIGTERM), lowest pid first.
    @discardableResult
    mutating func exitAll(status: ExitStatus = .exited(0)) -> [Action] {
        var actions: [Action] = []
        for pid in pool.workers.keys.sorted() { actions += send(.exited(pid: pid, status: status)) }
        return actions
    }

    /// The last STATUS= the pool sent to systemd.
    var lastStatus: String? {
        history.lastStatus
    }
}

extension PoolPolicy {
    /// Defaults, but without jitter so delays are exact, and without a reload's backlog check, so a roll ends
    /// when its last slot took over (PoolBacklogTests turn it on).
    static var testDefault: PoolPolicy {
        var policy = PoolPolicy()
        policy.backoff.jitter = 0
        policy.health.backlogWait = .zero
        return policy
    }

    static func with(_ change: (inout PoolPolicy) -> Void) -> PoolPolicy {
        var policy = PoolPolicy.testDefault
        change(&policy)
        return policy
    }
}

extension Array where Element == Action {
    /// The slots of the `.spawn` actions, in order.
    var spawnedSlots: [Int] {
        compactMap { if case let .spawn(slot, _, _) = $0 { slot } else { nil } }
    }

    /// The core's answers to control clients, in order.
    var replies: [Reply] {
        compactMap { if case let .reply(_, reply) = $0 { reply } else { nil } }
    }

    var signals: [(pid: Int32, signal: Signal)] {
        compactMap { if case let .signal(pid, signal) = $0 { (pid, signal) } else { nil } }
    }

    /// The pids sent `signal`, in order.
    func pids(sent signal: Signal) -> [Int32] {
        signals.filter { $0.signal == signal }.map(\.pid)
    }

    /// The datagrams to systemd, each a list of notices.
    var systemdDatagrams: [[SystemdNotice]] {
        compactMap { if case let .notifySystemd(notices) = $0 { notices } else { nil } }
    }

    /// Every notice to systemd, in order, whichever datagram it went in.
    var systemdNotices: [SystemdNotice] { systemdDatagrams.flatMap { $0 } }

    var exitCodes: [Int32] {
        compactMap { if case let .exit(code) = $0 { code } else { nil } }
    }

    func logs(atLeast level: LogLevel = .debug) -> [String] {
        compactMap {
            switch $0 {
            case let .log(l, text) where l >= level: text
            case let .report(event) where event.level >= level: event.message
            default: nil
            }
        }
    }

    var lastStatus: String? {
        systemdNotices.compactMap { if case .status(let text) = $0 { text } else { nil } }.last
    }

    var readyNotifications: Int { systemdNotices.count { $0 == .ready } }
}

/// Swift Testing has an `ExitStatus` of its own (for exit tests); in these tests the name means the core's.
typealias ExitStatus = SupervisorCore.ExitStatus

/// The requests the core's tests make most, as the shell would send them (an operator on connection 0).
extension Event {
    /// `hyperglassctl workers N`.
    static func desiredCountChanged(_ count: Int) -> Event { .requested(.workers(.to(count)), by: .client(0)) }
    /// `hyperglassctl restart`, for these slots.
    static func restartRequested(slots: [Int]) -> Event { .requested(.restart(slots: slots), by: .client(0)) }
    /// A reload whose configuration the shell has read: `policy`'s settings (the core numbers the release;
    /// `release` is what the test expects it to be).
    static func reloadRequested(release: Int, policy: PoolPolicy, count: Int? = nil, note: String? = nil) -> Event {
        .configurationRead(ReloadPlan(settings: policy.settings, count: count, note: note), autoscaler: nil, memoryCeiling: nil, for: .client(0))
    }
    /// A reload whose configuration the shell found invalid.
    static func reloadRejected(reason: String) -> Event { .configurationRejected(reason: reason, for: .client(0)) }
}
