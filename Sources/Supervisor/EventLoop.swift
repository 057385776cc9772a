import CHyperglass
import CSupervisorSignals
import ControlProtocol
import Glibc
import SupervisorCore

/// The thin shell: one thread, one epoll over the signalfd, the timerfd, the notify socket, the control
/// socket and health probes in flight (control requests are in EventLoop+Control.swift).
/// It turns readiness into `Event`s for the pool and the pool's `Action`s into system calls.
/// When nothing is due it sleeps in epoll_wait with no timeout: zero wake-ups while idle.
final class EventLoop {
    /// Any change to the pool may move its next deadline (see `armTimer`).
    var pool: Pool { didSet { poolDeadlineKnown = false } }
    /// `pool.nextDeadline` walks every worker's timers; it is computed again only after the pool
    /// changed, so a request that leaves the pool alone (a ping, a scrape) costs the same at 1,000 workers as at 4.
    private var poolDeadline: Instant? = nil
    private var poolDeadlineKnown = false
    let spawner: Spawner
    let reloader: Reloader
    private let prober = Prober()
    /// Looks in /proc whether starting workers accept on the listeners (`readiness = accepting`).
    private let acceptingProbe: AcceptingProbe
    /// Workers started and not yet reaped: the only pids (and process groups) the loop may signal.
    var unreaped: Set<Int32> = []
    var spawns = SpawnTable()
    let listeners: [Listener]
    /// Measures load for autoscaling (`sampleLoad`); the policy is the pool's.
    var loadSampler = LoadSampler()
    /// Whether the listeners are in the epoll set (for autoscaling's first-connection watch).
    var listenersWatched = false
    let notifier: SystemdNotifier
    let workerSockets: WorkerSockets
    let log: Log
    let epoll: Int32
    private let signals: Int32
    private let timer: Int32
    let control: ControlServer
    /// When the supervisor started; an upgrade's new image takes the old one's (Takeover.swift).
    var startedAt = Sys.now
    /// Requests whose reply comes later: `workers N --wait` once the pool has N workers,
    /// `reload --wait` and `restart --wait` once the roll with this id has ended.
    /// What a `--wait` client waits for: a count, or a roll's end (with `progress`, each step of it too).
    enum Awaited { case count(Int), roll(Int, progress: Bool) }
    var waiters: [(fd: Int32, awaited: Awaited)] = []
    /// The roll progress last sent to `--wait` clients, so each step is sent once.
    var shownProgress: RollProgress? = nil
    /// The core's replies to control clients in this dispatch, by connection (EventLoop+Control.swift).
    var replies: [Int32: Reply] = [:]
    private var armedDeadline: Instant? = nil
    /// The `metrics_bind` listener, if configured, and what a scrape reads besides the pool.
    let http: HTTPEndpoint?
    var collector: MetricsCollector
    /// Control clients following `hyperglassctl events`, by fd, with their connection: an fd is reused once
    /// closed, and so is a freed connection's address, so the connection itself is held (as `lateRequesters`).
    var followers: [Int32: ControlConnection] = [:]
    private var exitCode: Int32? = nil
    /// The upgrade preflight under way, if any (EventLoop+UpgradeCheck.swift).
    var upgradeCheck: UpgradeCheck.Running? = nil
    /// Checks killed (timed out, abandoned) and not reaped yet: their exits are no worker's.
    var endedChecks: Set<Int32> = []
    /// What checks left and were killed, not reaped yet: each one's reaping looks again for what it left.
    var checkLeftovers: Set<Int32> = []
    /// Clients whose reply comes from a later dispatch than their request's (an upgrade's, after its check),
    /// by fd, with their connection: a reply for a connection that has gone meanwhile is dropped, never sent
    /// to a newcomer that reused the fd. The connection itself is held, not its ObjectIdentifier: a freed
    /// connection's address is soon a newcomer's (measured: the refusal reached the next client).
    var lateRequesters: [Int32: ControlConnection] = [:]
    /// Set while `decide` dispatches a request: its reply is taken there, not delivered as a late one.
    var deciding = false

    private enum Source: UInt64 { case signal = 1, timer, control, systemd }
    /// The notifier's socket (fd, connection) the loop watches for room, while messages wait for systemd.
    private var watchedSystemd: (fd: Int32, connection: Int)? = nil
    /// epoll data for a control client: this bit plus its fd.
    static let clientTag: UInt64 = 1 << 32
    /// epoll data for a health probe's connection: this bit plus its fd.
    private static let probeTag: UInt64 = 1 << 33
    /// epoll data for a worker's notify socket: this bit plus its fd.
    static let notifyTag: UInt64 = 1 << 34
    /// epoll data for a spawn's exec report pipe: this bit plus its fd.
    static let spawnTag: UInt64 = 1 << 36
    /// epoll data for a connection to the `metrics_bind` listener, and for its listening sockets.
    static let httpTag: UInt64 = 1 << 37
    private static let httpListenerTag: UInt64 = 1 << 38

    /// The signals the loop handles (`Signal.handled`, the one table); they must be blocked before any thread
    /// exists: a constructor in CSupervisorSignals blocks its copy of the list before main, which checks that
    /// the two agree and blocks them again in case it did not run.
    static let handledSignals: [Int32] = Signal.handled.map(\.rawValue)

    /// Whether CSupervisorSignals blocks before main exactly the signals the table says are handled.
    static var earlyBlockedSignalsAgree: Bool {
        var count: Int32 = 0
        let list = hg_supervisor_signals(&count)
        return Set((0..<Int(count)).map { list![$0] }) == Set(handledSignals)
    }

    init(pool: Pool, spawner: Spawner, reloader: Reloader, listeners: [Listener], notifier: SystemdNotifier,
         workerSockets: WorkerSockets, control: ControlServer, log: Log, http: HTTPEndpoint? = nil) throws(SystemError) {
        self.control = control
        self.reloader = reloader
        self.pool = pool
        self.spawner = spawner
        self.listeners = listeners
        acceptingProbe = AcceptingProbe(listeners: listeners.map { ($0.fd, $0.address) })
        self.notifier = notifier
        self.workerSockets = workerSockets
        self.log = log
        self.http = http
        collector = MetricsCollector()
        epoll = try Sys.check("epoll_create1") { hg_epoll_create() }
        signals = try Sys.check("signalfd") { hg_signalfd(EventLoop.handledSignals, Int32(EventLoop.handledSignals.count)) }
        timer = try Sys.check("timerfd_create") { hg_timerfd_create() }
        for (fd, source) in [(signals, Source.signal), (timer, .timer)] {
            try Epoll.add(epoll, fd, HG_EPOLLIN, source.rawValue)
        }
        try control.attach(epoll: epoll, listenerData: Source.control.rawValue, clientTag: EventLoop.clientTag)
        try http?.attach(epoll: epoll, listenerTag: EventLoop.httpListenerTag)
        if pool.autoscaler != nil { watchListenersForLoad() }
    }

    /// Runs until the pool says exit; returns the exit code. `resuming` a handed-over pool (Takeover.swift)
    /// starts nothing: exits from the exec gap are reaped first, then restarts due are made.
    func run(resuming: Bool = false) -> Int32 {
        if resuming {
            reapChildren()
            dispatch(.deadlineReached)
        } else {
            dispatch(.started)
        }
        var events = [hg_event](repeating: hg_event(), count: 16)
        while exitCode == nil {
            startQueuedSpawns()
            // Control requests left over from the last turn, and spawns left for the next one, come after a
            // non-blocking look at everything else.
            let n = Epoll.wait(epoll, &events, timeoutMilliseconds: control.hasBacklog || !spawns.queued.isEmpty ? 0 : -1)
            for event in events.prefix(n) {
                if event.data & EventLoop.probeTag != 0 {
                    let fd = Int32(truncatingIfNeeded: event.data)
                    if let (pid, result) = prober.ready(fd, at: Sys.now) {
                        dispatch(.probed(pid: pid, result: result))
                    } else if prober.isInFlight(fd), !prober.wantsWrite(fd) {
                        // The request is out: wait for the answer only (a writable socket would wake us at once, forever).
                        // A probe finished earlier in this batch (its worker replaced) has a closed fd: nothing to change.
                        Epoll.modify(epoll, fd, HG_EPOLLIN, event.data)
                    }
                    continue
                }
                if event.data & EventLoop.treeTag != 0 {
                    treeChanged(Int32(truncatingIfNeeded: event.data))
                    continue
                }
                if event.data & EventLoop.upgradeCheckTag != 0 {
                    upgradeCheckReadable(Int32(truncatingIfNeeded: event.data))
                    continue
                }
                if event.data & EventLoop.spawnTag != 0 {
                    spawnReported(Int32(truncatingIfNeeded: event.data))
                    continue
                }
                if event.data & EventLoop.listenerTag != 0 {
                    dispatch(.loadArrived)
                    continue
                }
                if event.data & EventLoop.notifyTag != 0 {
                    receiveNotifications(Int32(truncatingIfNeeded: event.data))
                    continue
                }
                if event.data & EventLoop.httpListenerTag != 0 {
                    httpListenerReady(Int32(truncatingIfNeeded: event.data))
                    continue
                }
                if event.data & EventLoop.httpTag != 0 {
                    httpClientReady(Int32(truncatingIfNeeded: event.data), events: event.events)
                    continue
                }
                if event.data & EventLoop.clientTag != 0 {
                    control.ready(Int32(truncatingIfNeeded: event.data), events: event.events, at: Sys.now)
                    continue
                }
                switch Source(rawValue: event.data) {
                case .signal: readSignals()
                case .timer:
                    hg_timerfd_drain(timer)
                    armedDeadline = nil
                    // A WATCHDOG=1 already waiting on a socket was sent before this deadline passed. After a
                    // stall (the supervisor stopped or starved longer than a worker's watchdog) epoll may list
                    // the timer before those sockets: read them first, or every healthy worker looks hung.
                    for fd in workerSockets.notifyFDs { receiveNotifications(fd) }
                    // Likewise, exits that came before the deadline count first: a successor that died within min_ready
                    // must fail the roll even when the loop wakes late and finds both at once.
                    reapChildren()
                    spawner.trees.strays.deadlinePassed(at: Sys.now)
                    dispatch(.deadlineReached)
                    for (pid, result) in prober.expire(at: Sys.now) { dispatch(.probed(pid: pid, result: result)) }
                    control.expire(at: Sys.now)
                    http?.expire(at: Sys.now)
                    expireUpgradeCheck(at: Sys.now)
                    armTimer()
                case .control:
                    control.acceptAll(at: Sys.now)
                case .systemd:
                    notifier.flush()
                    watchSystemdWhilePending()
                case nil: preconditionFailure("epoll returned an unknown source \(event.data)")
                }
                if exitCode != nil { break }
            }
            if exitCode == nil { serveControlRequests() }
        }
        endAllTrees()
        Listeners.close(listeners)
        workerSockets.removeAll()
        endEventStreams()
        control.close()
        http?.close()
        return exitCode ?? 1
    }

    /// What waits on one worker's notify socket, as events; a datagram from another pid is only logged.
    private func receiveNotifications(_ fd: Int32) {
        let (accepted, rejected) = workerSockets.receive(fd)
        for pid in Set(rejected) { log(.debug, "ignored a notification sent by pid \(pid) on another worker's notify socket") }
        // A worker that notifies has exec'd: the pool hears `spawned` before its first message.
        for pid in Set(accepted.map(\.pid)) { resolveSpawn(of: pid) }
        for (pid, message) in accepted { dispatch(.notified(pid: pid, message: message)) }
    }

    private func readSignals() {
        while true {
            let signo = hg_signalfd_read(signals)
            if signo <= 0 { return }
            guard let signal = Signal(rawValue: signo) else { preconditionFailure("signalfd returned signal \(signo), which is not in the table") }
            if signal.meaning == .reap { reapChildren() } else { dispatch(.signalReceived(signal)) }
        }
    }

    /// SIGCHLD coalesces, so one signal may stand for many exits: reap until none is left.
    /// A worker's process group is killed just before its leader is reaped: until then the zombie pins
    /// both the pid and the group id, so the signal cannot reach a stranger that reused them.
    func reapChildren() {
        for _ in 0..<4096 {
            let exited = hg_peek_exited()
            if exited <= 0 { return }
            // Whatever it left in its group goes with it.
            if unreaped.contains(exited) || isUpgradeCheck(exited) { Sys.signalGroup(exited, SIGKILL) }
            var status: Int32 = 0
            let pid = hg_reap(exited, &status)
            if pid <= 0 { continue }
            let ended = hg_wifsignaled(status) != 0 ? ExitStatus.signaled(hg_wtermsig(status)) : .exited(hg_wexitstatus(status))
            if upgradeCheckReaped(pid, ended) { continue }
            unreaped.remove(pid)
            let exit = namedExit(of: pid, ended)
            workerSockets.release(pid: pid)
            spawner.trees.strays.reaped(pid)
            guard reapedSpawn(pid) else { discardTree(of: pid); continue }
            // What the worker started ends with it; with a cgroup, its exit counts once the cgroup is empty.
            if holdExitUntilTreeEnds(pid, exit) { continue }
            dispatch(.exited(pid: pid, status: exit))
        }
    }

    /// Feeds one event to the pool and performs what it asks, including the events spawning produces.
    func dispatch(_ event: Event) {
        var pending = pool.handle(event, at: Sys.now)
        var index = 0
        while index < pending.count {
            if let followUp = perform(pending[index]) { pending += pool.handle(followUp, at: Sys.now) }
            index += 1
        }
        answerWaiters()
        if !deciding { deliverLateReplies() }
        armTimer()
    }

    private func perform(_ action: Action) -> Event? {
        switch action {
        case let .spawn(slot, generation, release):
            // Forked on the next loop turns, its exec result an event of its own (EventLoop+Spawn.swift).
            queueSpawn(slot: slot, generation: generation, release: release)
        case let .signal(pid, signal):
            // Only a child not yet reaped: its pid and group cannot have been reused.
            guard unreaped.contains(pid) else { break }
            Sys.signalGroup(pid, signal.rawValue)
        case let .probe(pid):
            guard let address = workerSockets.healthAddress(of: pid) else {
                return .probed(pid: pid, result: ProbeResult(ok: true, latency: .zero, detail: "not probed: started without a health socket"))
            }
            let health = pool.policy.health
            switch prober.start(pid: pid, address: address, path: health.probePath ?? "/", timeout: health.probeTimeout, at: Sys.now) {
            case .failed(let result): return .probed(pid: pid, result: result)
            case .inFlight(let fd):
                do {
                    try Epoll.add(epoll, fd, HG_EPOLLIN | HG_EPOLLOUT, EventLoop.probeTag | UInt64(UInt32(bitPattern: fd)))
                } catch {
                    return .probed(pid: pid, result: prober.abandon(fd, because: "\(error)", at: Sys.now))
                }
            }
        case let .sampleAccepting(pids):
            var samples: [Int32: AcceptingSample] = [:]
            for pid in pids { samples[pid] = acceptingProbe.sample(pid: pid) }
            return .acceptingSampled(samples)
        case let .sampleMemory(pids):
            var usage: [Int32: UInt64] = [:]
            for pid in pids { usage[pid] = Sys.residentBytes(pid) }
            return .memorySampled(usage)
        case let .notifySystemd(notices):
            notifier.send(notices)
            watchSystemdWhilePending()
        case let .log(level, message):
            log(level, message)
        case let .report(event):
            report(event)
        case let .reply(fd, reply):
            replies[fd] = reply
        case let .readConfiguration(requester):
            let plan: ReloadPlan
            do { plan = try reloader.load(inEffect: pool.releases.inEffect, runningCount: pool.desired) } catch {
                // Whole to the journal; without quoted text to status and replies, which control_group readers see.
                log(.error, "reload refused: \(error)")
                return .configurationRejected(reason: error.withoutQuotedText, for: requester)
            }
            return .configurationRead(plan, autoscaler: Autoscaler(settings: plan.settings, onlineCPUs: reloader.onlineCPUs),
                                      memoryCeiling: LoadSampler.memoryCeiling(maxMemory: plan.settings.health.maxMemory), for: requester)
        case let .checkUpgrade(path, requester):
            return startUpgradeCheck(path, for: requester)
        case .cancelUpgradeCheck:
            cancelUpgradeCheck()
        case let .execUpgrade(path, newVersion, wait, requester):
            // A client to answer, or SIGUSR2 (none: the log says how it went).
            let fd: Int32? = if case .client(let fd) = requester { fd } else { nil }
            // Returns only when the upgrade could not be done (Upgrade.swift).
            return .upgradeFailed(reason: upgrade(to: path, newVersion: newVersion, wait: wait, requester: fd), for: requester)
        case let .sampleLoad(workers, starting):
            return .loadSampled(loadSampler.sample(listeners: listeners.map(\.fd), workers: workers, starting: starting, at: Sys.now))
        case .sampleBacklog:
            return .backlogSampled(BacklogProbe.sample(listeners, connectionsTaken: true))
        case .watchForLoad:
            watchListenersForLoad()
        case let .exit(code):
            exitCode = code
        }
        return nil
    }

    /// Watches the notifier's socket for room while messages wait for systemd, and only then: a connected
    /// datagram socket is writable whenever systemd's queue has room, which would otherwise wake us forever.
    private func watchSystemdWhilePending() {
        let wanted = notifier.hasPending && notifier.fd >= 0 ? (fd: notifier.fd, connection: notifier.connection) : nil
        if let watched = watchedSystemd, let wanted, watched == wanted { return }
        // A socket the notifier closed left epoll with its close; removing a reused number is harmless (ENOENT).
        if let watched = watchedSystemd, watched.connection == notifier.connection { Epoll.remove(epoll, watched.fd) }
        watchedSystemd = nil
        guard let wanted else { return }
        do {
            try Epoll.add(epoll, wanted.fd, HG_EPOLLOUT, Source.systemd.rawValue)
            watchedSystemd = wanted
        } catch {
            log(.error, "cannot watch systemd's notify socket for room: \(error); messages to systemd wait for the next one")
        }
    }

    func armTimer() {
        if !poolDeadlineKnown {
            poolDeadline = pool.nextDeadline
            poolDeadlineKnown = true
        }
        let deadline = [poolDeadline, control.nextDeadline, prober.nextDeadline, http?.nextDeadline,
                        spawner.trees.strays.nextDeadline, upgradeCheck?.deadline].compactMap { $0 }.min()
        guard deadline != armedDeadline else { return }
        armedDeadline = deadline
        // An absolute 0 would disarm; a deadline at the very start of the clock still means "now".
        _ = hg_timerfd_set(timer, deadline.map { max($0.nanoseconds, 1) } ?? 0)
    }
}
