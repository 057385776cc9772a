import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// The thin shell: one thread, one epoll over the signalfd, the timerfd and the notify socket.
/// It turns readiness into `Event`s for the pool and the pool's `Action`s into system calls.
/// When nothing is due it sleeps in epoll_wait with no timeout: zero wake-ups while idle.
final class EventLoop {
    private var pool: Pool
    private var spawner: Spawner
    private var reloader: Reloader
    private let prober = Prober()
    /// Each worker's private socket for probes, by pid.
    private var healthAddresses: [Int32: String] = [:]
    private var lastRelease = 1
    /// Changed settings a reload could not apply, by roll id, for its reply.
    private var reloadNotes: [Int: String] = [:]
    private let listeners: [Listener]
    private let notifier: SystemdNotifier
    private let notifySocket: WorkerNotifySocket
    private let log: Log
    private let epoll: Int32
    private let signals: Int32
    private let timer: Int32
    private let control: ControlServer
    private let startedAt = Sys.now
    /// Requests whose reply comes later: `workers N --wait` once the pool has N workers,
    /// `reload --wait` and `restart --wait` once the roll with this id has ended.
    private enum Awaited { case count(Int), roll(Int) }
    private var waiters: [(fd: Int32, awaited: Awaited)] = []
    private var armedDeadline: Instant? = nil
    private var exitCode: Int32? = nil

    private enum Source: UInt64 { case signal = 1, timer, notify, control }
    /// epoll data for a control client: this bit plus its fd.
    private static let clientTag: UInt64 = 1 << 32
    /// epoll data for a health probe's connection: this bit plus its fd.
    private static let probeTag: UInt64 = 1 << 33

    /// The signals the loop handles; they must be blocked before any thread exists.
    static let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGTTIN, SIGTTOU]

    init(pool: Pool, spawner: Spawner, reloader: Reloader, listeners: [Listener], notifier: SystemdNotifier,
         notifySocket: WorkerNotifySocket, control: ControlServer, log: Log) throws(SystemError) {
        self.control = control
        self.reloader = reloader
        self.pool = pool
        self.spawner = spawner
        self.listeners = listeners
        self.notifier = notifier
        self.notifySocket = notifySocket
        self.log = log
        epoll = try Sys.check("epoll_create1") { hg_epoll_create() }
        signals = try Sys.check("signalfd") { hg_signalfd(EventLoop.handledSignals, Int32(EventLoop.handledSignals.count)) }
        timer = try Sys.check("timerfd_create") { hg_timerfd_create() }
        for (fd, source) in [(signals, Source.signal), (timer, .timer), (notifySocket.fd, .notify), (control.fd, .control)] {
            try Sys.check("epoll_ctl") { hg_epoll_add(epoll, fd, HG_EPOLLIN, source.rawValue) }
        }
    }

    /// Runs until the pool says exit; returns the exit code.
    func run() -> Int32 {
        dispatch(.started)
        var events = [hg_event](repeating: hg_event(), count: 16)
        while exitCode == nil {
            let n = hg_epoll_wait(epoll, &events, Int32(events.count), -1)
            if n < 0 {
                precondition(errno == EINTR, "epoll_wait failed: \(String(cString: strerror(errno)))")
                continue
            }
            for event in events.prefix(Int(n)) {
                if event.data & EventLoop.probeTag != 0 {
                    if let (pid, result) = prober.ready(Int32(truncatingIfNeeded: event.data), at: Sys.now) {
                        dispatch(.probed(pid: pid, result: result))
                    }
                    continue
                }
                if event.data & EventLoop.clientTag != 0 {
                    controlClientReady(Int32(truncatingIfNeeded: event.data), events: event.events)
                    continue
                }
                switch Source(rawValue: event.data) {
                case .signal: readSignals()
                case .timer:
                    hg_timerfd_drain(timer)
                    armedDeadline = nil
                    dispatch(.deadlineReached)
                    for (pid, result) in prober.expire(at: Sys.now) { dispatch(.probed(pid: pid, result: result)) }
                    control.expire(at: Sys.now)
                    armTimer()
                case .notify:
                    for (pid, message) in notifySocket.receiveAll() { dispatch(.notified(pid: pid, message: message)) }
                case .control:
                    for fd in control.acceptAll(at: Sys.now) {
                        _ = hg_epoll_add(epoll, fd, HG_EPOLLIN | HG_EPOLLRDHUP, EventLoop.clientTag | UInt64(UInt32(bitPattern: fd)))
                    }
                    armTimer()
                case nil: preconditionFailure("epoll returned an unknown source \(event.data)")
                }
                if exitCode != nil { break }
            }
        }
        Listeners.close(listeners)
        control.close()
        return exitCode ?? 1
    }

    private func readSignals() {
        while true {
            let signo = hg_signalfd_read(signals)
            if signo <= 0 { return }
            if signo == SIGCHLD {
                reapChildren()
            } else if signo == SIGHUP {
                // An invalid configuration is logged by the pool; only a busy or stopping pool needs a word here.
                if let refusal = pool.rollRefusal(.reload) { log(.warning, "SIGHUP: \(refusal)") } else {
                    log(.notice, "SIGHUP: reloading the configuration")
                    _ = reload()
                }
            } else if let signal = Signal(rawValue: signo) {
                dispatch(.signalReceived(signal))
            }
        }
    }

    /// SIGCHLD coalesces, so one signal may stand for many exits: reap until none is left.
    private func reapChildren() {
        while true {
            var status: Int32 = 0
            let pid = hg_reap_any(&status)
            if pid <= 0 { return }
            let exit: ExitStatus = hg_wifsignaled(status) != 0 ? .signaled(hg_wtermsig(status)) : .exited(hg_wexitstatus(status))
            healthAddresses.removeValue(forKey: pid)
            dispatch(.exited(pid: pid, status: exit))
        }
    }

    /// Feeds one event to the pool and performs what it asks, including the events spawning produces.
    private func dispatch(_ event: Event) {
        var pending = pool.handle(event, at: Sys.now)
        var index = 0
        while index < pending.count {
            if let followUp = perform(pending[index]) { pending += pool.handle(followUp, at: Sys.now) }
            index += 1
        }
        if let outcome = pool.lastRoll { reloader.rollEnded(outcome) }
        answerWaiters()
        armTimer()
    }

    private func perform(_ action: Action) -> Event? {
        switch action {
        case let .spawn(slot, generation, release):
            do {
                let started = try spawner.spawn(slot: slot, generation: generation, release: release)
                healthAddresses[started.pid] = started.healthAddress
                return .spawned(slot: slot, generation: generation, pid: started.pid)
            } catch {
                return .spawnFailed(slot: slot, generation: generation, reason: error.description)
            }
        case let .signal(pid, signal):
            Sys.signalGroup(pid, signal.rawValue)
        case let .probe(pid):
            guard let address = healthAddresses[pid] else {
                return .probed(pid: pid, result: ProbeResult(ok: true, latency: .zero, detail: "not probed: started without a health socket"))
            }
            let health = pool.policy.health
            switch prober.start(pid: pid, address: address, path: health.probePath ?? "/", timeout: health.probeTimeout, at: Sys.now) {
            case .failure(let failure): return .probed(pid: pid, result: failure.result)
            case .success(let fd): _ = hg_epoll_add(epoll, fd, HG_EPOLLIN | HG_EPOLLOUT, EventLoop.probeTag | UInt64(UInt32(bitPattern: fd)))
            }
        case let .sampleMemory(pids):
            var usage: [Int32: UInt64] = [:]
            for pid in pids { usage[pid] = Sys.residentBytes(pid) }
            return .memorySampled(usage)
        case let .notifySystemd(assignments):
            notifier.send(assignments)
        case let .log(level, message):
            log(level, message)
        case let .exit(code):
            exitCode = code
        }
        return nil
    }

    private func armTimer() {
        let deadline = [pool.nextDeadline, control.nextDeadline, prober.nextDeadline].compactMap { $0 }.min()
        guard deadline != armedDeadline else { return }
        armedDeadline = deadline
        // An absolute 0 would disarm; a deadline at the very start of the clock still means "now".
        _ = hg_timerfd_set(timer, deadline.map { max($0.nanoseconds, 1) } ?? 0)
    }

    // MARK: - Control requests

    private func controlClientReady(_ fd: Int32, events: UInt32) {
        if events & HG_EPOLLOUT != 0 { _ = control.writable(fd) }
        if events & (HG_EPOLLIN | HG_EPOLLHUP | HG_EPOLLRDHUP | HG_EPOLLERR) != 0 {
            for line in control.readable(fd, at: Sys.now) where control.isOpen(fd) {
                if let reply = answer(line, from: fd) { control.reply(to: fd, reply) }
            }
        }
        watch(fd)
        armTimer()
    }

    /// Keeps a client's epoll interest in step with its output: EPOLLOUT only while a reply waits to be sent.
    private func watch(_ fd: Int32) {
        if control.isOpen(fd) {
            let interest = HG_EPOLLIN | HG_EPOLLRDHUP | (control.wantsWrite(fd) ? HG_EPOLLOUT : 0)
            _ = hg_epoll_mod(epoll, fd, interest, EventLoop.clientTag | UInt64(UInt32(bitPattern: fd)))
        } else {
            waiters.removeAll { $0.fd == fd }
        }
    }

    /// The reply to one request line, or nil when it comes later (`--wait`).
    private func answer(_ line: String, from fd: Int32) -> JSON? {
        let request: ControlRequest
        do { request = try ControlRequest(line: line) } catch { return ControlReply.failure(error.message) }
        guard request.isReadOnly || control.role(of: fd) == .admin else {
            return ControlReply.failure("permission denied: members of control_group may only read status")
        }
        switch request {
        case .ping: return ControlReply.success([("pong", .bool(true))])
        case .version: return ControlReply.success([("version", .string(version)), ("protocol", .number(Double(ControlRequest.protocolVersion)))])
        case .status: return StatusReport.json(pool: pool, startedAt: startedAt, now: Sys.now)
        case .getWorkers:
            return ControlReply.success([("desired", .number(Double(pool.desired))), ("ready", .number(Double(pool.readyCount)))])
        case let .setWorkers(change, wait):
            if case .stopping = pool.phase { return ControlReply.failure("the supervisor is stopping") }
            let previous = pool.desired
            let target = change.applied(to: previous)
            guard (1...pool.policy.maxWorkers).contains(target) else {
                return ControlReply.failure("\(target) workers is out of range: the count must be from 1 to max_workers (\(pool.policy.maxWorkers))")
            }
            dispatch(.desiredCountChanged(target))
            if wait { return replyLater(.count(target), by: fd) }
            return ControlReply.success([("previous", .number(Double(previous))), ("desired", .number(Double(target)))])
        case let .reload(wait):
            switch reload() {
            case .failure(let refusal): return ControlReply.failure(refusal.message)
            case .success(let id): return wait ? replyLater(.roll(id), by: fd) : rollStarted(id)
            }
        case let .restart(target, wait):
            let ids: [Int]
            switch target {
            case .all: ids = Array(pool.slots.indices)
            case .worker(let id):
                guard pool.slots.indices.contains(id) else {
                    return ControlReply.failure("there is no worker \(id): the workers are 0 to \(pool.desired - 1)")
                }
                ids = [id]
            }
            if let refusal = pool.rollRefusal(.restart) { return ControlReply.failure(refusal) }
            let id = pool.nextRollID
            dispatch(.restartRequested(slots: ids))
            return wait ? replyLater(.roll(id), by: fd) : rollStarted(id)
        }
    }

    private func replyLater(_ awaited: Awaited, by fd: Int32) -> JSON? {
        control.markAwaiting(fd, until: Sys.now + ControlServer.waitTimeout)
        waiters.append((fd, awaited))
        answerWaiters()
        return nil
    }

    private func rollStarted(_ id: Int) -> JSON {
        if let outcome = pool.lastRoll, outcome.id == id { return rollReply(outcome) }
        let total = pool.roll?.total ?? 0
        let note = reloadNotes.removeValue(forKey: id)
        return ControlReply.success([("summary", .string("\(pool.roll?.kind.rawValue ?? "roll") started: \(total) worker\(total == 1 ? "" : "s") to replace"))]
                                    + (note.map { [("note", .string($0))] } ?? []))
    }

    private func rollReply(_ outcome: RollOutcome) -> JSON {
        let note = reloadNotes.removeValue(forKey: outcome.id)
        guard outcome.succeeded else { return ControlReply.failure(outcome.summary) }
        return ControlReply.success([("summary", .string(outcome.summary))] + (note.map { [("note", .string($0))] } ?? []))
    }

    /// Re-reads the configuration and starts the roll onto it; the roll's id, or why nothing happened.
    private func reload() -> Result<Int, ControlError> {
        if let refusal = pool.rollRefusal(.reload) { return .failure(ControlError(refusal)) }
        let plan: Reloader.Plan
        do {
            plan = try reloader.load(runningCount: pool.desired, rollID: pool.nextRollID)
        } catch {
            dispatch(.reloadRejected(reason: error.description))
            return .failure(ControlError(pool.lastRoll?.summary ?? error.description))
        }
        if !plan.needRestart.isEmpty {
            let note = "\(plan.needRestart.joined(separator: ", ")) changed, but only a restart applies that (systemctl restart hyperglass); kept the running value"
            log(.warning, "reload: " + note)
            reloadNotes[pool.nextRollID] = note
        }
        spawner.keepOnly(Set(pool.slots.map(\.release) + pool.workers.values.map(\.release)))
        lastRelease += 1
        spawner.register(release: lastRelease, settings: plan.settings)
        let id = pool.nextRollID
        // Shrink before the roll and grow after it, so no slot is replaced only to be removed.
        if let count = plan.count, count < pool.desired { dispatch(.desiredCountChanged(count)) }
        dispatch(.reloadRequested(release: lastRelease, policy: PoolPolicy(settings: plan.settings, systemdWatchdog: notifier.watchdog)))
        if let count = plan.count, count > pool.desired { dispatch(.desiredCountChanged(count)) }
        return .success(id)
    }

    private func answerWaiters() {
        guard !waiters.isEmpty else { return }
        var answered: [Int32] = []
        waiters.removeAll { waiter in
            guard control.isOpen(waiter.fd) else { return true }
            guard let reply = reply(awaiting: waiter.awaited) else { return false }
            control.reply(to: waiter.fd, reply)
            answered.append(waiter.fd)
            return true
        }
        answered.forEach(watch)
    }

    /// The deferred reply, once there is one.
    private func reply(awaiting awaited: Awaited) -> JSON? {
        if case .roll(let id) = awaited, let outcome = pool.lastRoll, outcome.id == id { return rollReply(outcome) }
        if case .stopping = pool.phase { return ControlReply.failure("the supervisor is stopping") }
        switch awaited {
        case .roll: return nil
        case .count(let target):
            if pool.desired != target { return ControlReply.failure("the worker count was changed to \(pool.desired) by another request") }
            guard pool.isSettled else { return nil }
            return ControlReply.success([("desired", .number(Double(pool.desired))), ("ready", .number(Double(pool.readyCount)))])
        }
    }
}
