import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// The thin shell: one thread, one epoll over the signalfd, the timerfd, the notify socket, the control
/// socket and health probes in flight (control requests are in EventLoop+Control.swift).
/// It turns readiness into `Event`s for the pool and the pool's `Action`s into system calls.
/// When nothing is due it sleeps in epoll_wait with no timeout: zero wake-ups while idle.
final class EventLoop {
    var pool: Pool
    let spawner: Spawner
    let reloader: Reloader
    private let prober = Prober()
    /// Each worker's private socket for probes, by pid.
    private var healthAddresses: [Int32: String] = [:]
    private let listeners: [Listener]
    let notifier: SystemdNotifier
    private let notifySocket: WorkerNotifySocket
    let log: Log
    let epoll: Int32
    private let signals: Int32
    private let timer: Int32
    let control: ControlServer
    let startedAt = Sys.now
    /// Requests whose reply comes later: `workers N --wait` once the pool has N workers,
    /// `reload --wait` and `restart --wait` once the roll with this id has ended.
    enum Awaited { case count(Int), roll(Int) }
    var waiters: [(fd: Int32, awaited: Awaited)] = []
    private var armedDeadline: Instant? = nil
    /// Pool events in the journal with their fields, when stderr is the journal (EventLoop+Observability.swift).
    let journal: JournalWriter?
    /// The `metrics_bind` listener, if configured, and what a scrape reads besides the pool.
    let http: HTTPEndpoint?
    let collector: MetricsCollector
    /// Control clients following `hyperglassctl events`.
    var followers: Set<Int32> = []
    private var exitCode: Int32? = nil

    private enum Source: UInt64 { case signal = 1, timer, notify, control }
    /// epoll data for a control client: this bit plus its fd.
    static let clientTag: UInt64 = 1 << 32
    /// epoll data for a health probe's connection: this bit plus its fd.
    private static let probeTag: UInt64 = 1 << 33
    /// epoll data for a connection to the `metrics_bind` listener, and for the listening sockets themselves.
    static let httpTag: UInt64 = 1 << 34
    private static let httpListenerTag: UInt64 = 1 << 35

    /// The signals the loop handles; they must be blocked before any thread exists.
    static let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGTTIN, SIGTTOU]

    init(pool: Pool, spawner: Spawner, reloader: Reloader, listeners: [Listener], notifier: SystemdNotifier,
         notifySocket: WorkerNotifySocket, control: ControlServer, log: Log, http: HTTPEndpoint? = nil) throws(SystemError) {
        self.control = control
        self.reloader = reloader
        self.pool = pool
        self.spawner = spawner
        self.listeners = listeners
        self.notifier = notifier
        self.notifySocket = notifySocket
        self.log = log
        self.http = http
        journal = log.journal ? JournalWriter() : nil
        collector = MetricsCollector(listeners: listeners)
        epoll = try Sys.check("epoll_create1") { hg_epoll_create() }
        signals = try Sys.check("signalfd") { hg_signalfd(EventLoop.handledSignals, Int32(EventLoop.handledSignals.count)) }
        timer = try Sys.check("timerfd_create") { hg_timerfd_create() }
        for (fd, source) in [(signals, Source.signal), (timer, .timer), (notifySocket.fd, .notify), (control.fd, .control)] {
            try Sys.check("epoll_ctl") { hg_epoll_add(epoll, fd, HG_EPOLLIN, source.rawValue) }
        }
        for fd in http?.fds ?? [] {
            try Sys.check("epoll_ctl") { hg_epoll_add(epoll, fd, HG_EPOLLIN, EventLoop.httpListenerTag | UInt64(UInt32(bitPattern: fd))) }
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
                    let fd = Int32(truncatingIfNeeded: event.data)
                    if let (pid, result) = prober.ready(fd, at: Sys.now) {
                        dispatch(.probed(pid: pid, result: result))
                    } else if !prober.wantsWrite(fd) {
                        // The request is out: wait for the answer only (a writable socket would wake us at once, forever).
                        _ = hg_epoll_mod(epoll, fd, HG_EPOLLIN, event.data)
                    }
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
                    http?.expire(at: Sys.now)
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
        http?.close()
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
    func dispatch(_ event: Event) {
        var pending = pool.handle(event, at: Sys.now)
        var index = 0
        while index < pending.count {
            if let followUp = perform(pending[index]) { pending += pool.handle(followUp, at: Sys.now) }
            index += 1
        }
        answerWaiters()
        armTimer()
    }

    private func perform(_ action: Action) -> Event? {
        switch action {
        case let .spawn(slot, generation, release):
            do {
                let started = try spawner.spawn(slot: slot, generation: generation, release: release, settings: pool.releases[release])
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
            case .failed(let result): return .probed(pid: pid, result: result)
            case .inFlight(let fd): _ = hg_epoll_add(epoll, fd, HG_EPOLLIN | HG_EPOLLOUT, EventLoop.probeTag | UInt64(UInt32(bitPattern: fd)))
            }
        case let .sampleMemory(pids):
            var usage: [Int32: UInt64] = [:]
            for pid in pids { usage[pid] = Sys.residentBytes(pid) }
            return .memorySampled(usage)
        case let .notifySystemd(assignments):
            notifier.send(assignments)
        case let .log(level, message):
            log(level, message)
        case let .report(event):
            report(event)
        case let .exit(code):
            exitCode = code
        }
        return nil
    }

    func armTimer() {
        let deadline = [pool.nextDeadline, control.nextDeadline, prober.nextDeadline, http?.nextDeadline].compactMap { $0 }.min()
        guard deadline != armedDeadline else { return }
        armedDeadline = deadline
        // An absolute 0 would disarm; a deadline at the very start of the clock still means "now".
        _ = hg_timerfd_set(timer, deadline.map { max($0.nanoseconds, 1) } ?? 0)
    }
}
