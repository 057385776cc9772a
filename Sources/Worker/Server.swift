import CHyperglass
import Glibc
import SystemCalls
import WorkerKit

/// The worker's single-threaded event loop: one epoll set over the listening sockets, the drain
/// signalfd and the connections. It sleeps until an fd is ready or a deadline is due: with no
/// connection and no watchdog it never wakes.
final class Server {
    struct Configuration {
        var listeners: [Int32]
        var drainTimeout: UInt64
        var limits = Limits()
        /// Unix socket paths we created ourselves with --bind, removed on exit.
        var ownedPaths: [String] = []
    }

    private let configuration: Configuration
    private var limits: Limits
    private let router: Router
    private let notifier: Notifier
    private let drainSignal: DrainSignal
    private let watchdogInterval: UInt64?
    private let epoll: Int32
    private var listeners: [Int32]
    /// Connections indexed by fd: the kernel hands out the lowest free fd, so the table stays dense.
    private var connections: [Connection?] = []
    private var openConnections = 0
    /// Open connections accepted only to be refused (see `refuse`); the rest count against max_connections.
    private var refusing = 0
    /// Whether the listeners are in the epoll set.
    private var listening = false
    /// At max_connections: not accepting, and looking every `refusalCheckInterval` (at this time) for
    /// connections that no worker with room takes; 0 when below the cap.
    private var refusalCheckAt: UInt64 = 0
    /// Checks in a row that found connections waiting (see `Limits.refusalChecks`).
    private var checksSeenWaiting = 0
    private var nextSerial: UInt32 = 1
    private var timers = TimerQueue()
    private var nextWatchdog: UInt64 = 0
    private var announcements = Announcements()
    private var draining = false
    private var drainDeadline: UInt64 = 0
    /// Set while accept() fails for lack of fds, so a readable listener does not spin the loop.
    private var acceptResumesAt: UInt64 = 0
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    private let events = UnsafeMutableBufferPointer<hg_event>.allocate(capacity: 64)
    private var now: UInt64 = hg_monotonic_ns()

    init(configuration: Configuration, router: Router, notifier: Notifier, drainSignal: DrainSignal, watchdogInterval: UInt64?) {
        self.configuration = configuration
        self.limits = configuration.limits
        self.router = router
        self.notifier = notifier
        self.drainSignal = drainSignal
        self.watchdogInterval = watchdogInterval
        self.listeners = configuration.listeners
        switch Sys.retryingInterrupts("epoll_create1", hg_epoll_create) {
        case .success(let fd): epoll = fd
        case .failure(let error): preconditionFailure("epoll_create1 failed: \(error)")
        }
    }

    /// Serves until drained; never returns.
    func run() -> Never {
        watch(drainSignal.fd, HG_EPOLLIN, UInt64(UInt32(bitPattern: drainSignal.fd)))
        addListeners()
        announcements.announce("READY=1", now: now, via: notifier)
        announcements.announce("STATUS=serving", now: now, via: notifier)
        if let watchdogInterval {
            notifier.watchdog()
            nextWatchdog = now + watchdogInterval
        }
        while true {
            let count = Epoll.wait(epoll, events, timeoutMilliseconds: timeout())
            now = hg_monotonic_ns()
            for i in 0..<count { dispatch(events[i]) }
            runDueTimers()
        }
    }

    // MARK: events

    private func dispatch(_ event: hg_event) {
        let fd = Int32(truncatingIfNeeded: event.data & 0xFFFF_FFFF)
        let serial = UInt32(truncatingIfNeeded: event.data >> 32)
        if serial == 0 {
            // A listener's event may come in the batch that filled us up: no longer listening, nothing to take.
            if fd == drainSignal.fd { handleSignals() } else if !draining && listening { accept(from: fd) }
            return
        }
        // A stale event for an fd closed earlier in this batch (and perhaps reused) is dropped.
        guard let connection = connection(fd, serial) else { return }
        // An error, or a hang-up we are not reading for (EOF seen, or a sleeping request): epoll reports
        // these whatever the interest, so waiting would spin. Nothing can reach the peer any more.
        if event.events & HG_EPOLLERR != 0 || (event.events & HG_EPOLLHUP != 0 && connection.interest & HG_EPOLLIN == 0) {
            return close(connection)
        }
        if event.events & (HG_EPOLLIN | HG_EPOLLHUP | HG_EPOLLERR) != 0, connection.interest & HG_EPOLLIN != 0 {
            guard read(connection) else { return close(connection) }
        }
        settle(connection)
    }

    private func handleSignals() {
        while let signal = drainSignal.next() {
            if draining {
                log("second \(signal == SIGINT ? "SIGINT" : "SIGTERM"): exiting now, cutting \(openConnections) connection(s)")
                finish(status: 0)
            }
            beginDrain(signal)
        }
    }

    private func accept(from listener: Int32) {
        for _ in 0..<64 {
            let fd: Int32
            switch Sys.accept(listener) {
            case .success(let accepted):
                fd = accepted
            case .failure(let error):
                switch error.rawValue {
                case EAGAIN, EWOULDBLOCK: return
                case ECONNABORTED, EPROTO, EPERM: continue
                case let code where code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM:
                    // Out of fds: the HTTP connection waiting longest for a request gives way, so
                    // a flood of idle (or slow-loris) connections cannot lock new clients out.
                    if code == EMFILE || code == ENFILE, let victim = Connection.longestWaiting(in: connections) {
                        close(victim)
                        continue
                    }
                    // Nothing to give way: pause accepting briefly; the connection waits in the backlog.
                    log("accept: \(error); pausing accepts for 100 ms")
                    removeListeners(close: false)
                    acceptResumesAt = now + 100_000_000
                    return
                case let code:
                    precondition(code != ENOTSOCK, "accept on a bad listener fd \(listener)")
                    return
                }
            }
            Sys.setNoDelay(fd)
            if refusalCheckAt != 0 {
                refuse(fd)
                continue
            }
            let connection = register(fd)
            schedule(connection)
            if limits.maxConnections > 0, openConnections - refusing >= limits.maxConnections {
                // Full: stop accepting, so the kernel hands new connections to workers with room.
                removeListeners(close: false)
                refusalCheckAt = now + limits.refusalCheckInterval
                checksSeenWaiting = 0
                return
            }
        }
    }

    private func register(_ fd: Int32) -> Connection {
        let serial = nextSerial
        nextSerial = nextSerial == UInt32.max ? 1 : nextSerial + 1
        let connection = Connection(fd: fd, serial: serial, now: now, interest: HG_EPOLLIN)
        if Int(fd) >= connections.count { connections.append(contentsOf: repeatElement(nil, count: Int(fd) + 64 - connections.count)) }
        connections[Int(fd)] = connection
        openConnections += 1
        watch(fd, HG_EPOLLIN, key(connection))
        return connection
    }

    /// 503 with Retry-After before reading anything (an upgrade request gets it too: a clean handshake
    /// failure), then our FIN; the connection lingers until the client's, so the answer is read, not reset.
    private func refuse(_ fd: Int32) {
        guard refusing < limits.maxLingeringRefusals else {
            _ = Server.refusal.withUnsafeBytes { Sys.send(fd, $0) }  // best effort under a flood
            Sys.close(fd)
            return
        }
        let connection = register(fd)
        connection.refused = true
        refusing += 1
        connection.output = Server.refusal
        connection.closeAfterFlush = true
        settle(connection)
    }

    private static let refusal: [UInt8] = {
        var out: [UInt8] = []
        HTTPResponse.appendError(.serviceUnavailable, extraHeaders: "Retry-After: 1\r\n", to: &out)
        return out
    }()

    /// At the cap, every `refusalCheckInterval`: an accept queue that stayed non-empty for `refusalChecks`
    /// checks in a row is one no worker with room empties, so every worker is full: what waits gets its 503.
    private func checkRefusals() {
        let waiting = listeners.filter { Sys.hasPendingConnection($0) }
        checksSeenWaiting = waiting.isEmpty ? 0 : checksSeenWaiting + 1
        if checksSeenWaiting >= limits.refusalChecks {
            for listener in waiting { accept(from: listener) }
            checksSeenWaiting = 0
        }
        refusalCheckAt = now + limits.refusalCheckInterval
    }

    /// Reads once into the shared buffer; returns false when the connection must close now.
    private func read(_ connection: Connection) -> Bool {
        switch Sys.read(connection.fd, readBuffer) {
        case .bytes(let n):
            connection.lastActivity = now
            if connection.mode == .lingering { return true }
            connection.input.append(contentsOf: UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
            connection.process(router: router, limits: limits, draining: draining, now: now)
            connection.heard(now: now, limits: limits)
            return true
        case .wouldBlock:
            return true
        case .endOfFile:
            connection.peerClosed = true
            return true
        case .failed:
            return false
        }
    }

    /// Writes what is pending, then decides the connection's next step: close, linger, or wait
    /// for the right events until its deadline.
    private func settle(_ connection: Connection) {
        if connection.pendingOutput > 0 {
            guard flush(connection) else { return close(connection) }
            if connection.pendingOutput > 0, connection.outputWaitingSince == 0 { connection.outputWaitingSince = now }
        }
        if connection.pendingOutput == 0 {
            switch connection.mode {
            case .sleeping:
                break
            case .lingering:
                if connection.peerClosed { return close(connection) }
            case .http, .webSocket:
                if connection.closeAfterFlush {
                    if connection.peerClosed { return close(connection) }
                    // Our FIN, then read until theirs: closing with unread input would send a reset
                    // that can destroy the response we just sent.
                    Sys.shutdownWrite(connection.fd)
                    connection.mode = .lingering
                    connection.input = []
                    connection.modeDeadline = now + limits.lingerTimeout
                } else if connection.peerClosed {
                    return close(connection)
                }
            }
        }
        var wanted: UInt32 = 0
        let backlogged = connection.pendingOutput > limits.maxPendingOutput
            || (connection.mode == .sleeping && connection.input.count > limits.maxHeadLength + limits.maxBodyLength)
        if !connection.peerClosed && !backlogged { wanted |= HG_EPOLLIN }
        if connection.pendingOutput > 0 { wanted |= HG_EPOLLOUT }
        if wanted != connection.interest {
            connection.interest = wanted
            Epoll.modify(epoll, connection.fd, wanted, key(connection))
        }
        schedule(connection)
    }

    /// Writes until done or the socket is full; false when the peer is gone.
    private func flush(_ connection: Connection) -> Bool {
        while connection.pendingOutput > 0 {
            let result = connection.output.withUnsafeBytes { raw in
                Sys.send(connection.fd, UnsafeRawBufferPointer(rebasing: raw[connection.sent...]))
            }
            switch result {
            case .bytes(let n):
                connection.sent += n
                connection.lastActivity = now
                connection.outputWaitingSince = now
            case .wouldBlock:
                return true
            case .endOfFile, .failed:
                return false
            }
        }
        connection.output.removeAll(keepingCapacity: connection.output.capacity <= 64 * 1024)
        connection.sent = 0
        connection.outputWaitingSince = 0
        return true
    }

    private func close(_ connection: Connection) {
        Sys.close(connection.fd)
        connections[Int(connection.fd)] = nil
        openConnections -= 1
        if connection.refused {
            refusing -= 1
        } else if refusalCheckAt != 0, openConnections - refusing < limits.maxConnections {
            // Room again: accept as before (unless out of fds for the moment, or draining).
            refusalCheckAt = 0
            if acceptResumesAt == 0 && !draining { addListeners() }
        }
        if draining && openConnections == 0 {
            log("drained: all connections closed; exiting")
            finish(status: 0)
        }
    }

    // MARK: time

    /// Queues the connection's deadline unless an entry at or before it is already queued.
    private func schedule(_ connection: Connection) {
        let deadline = connection.deadline(limits)
        guard deadline != 0, connection.queuedDeadline == 0 || deadline < connection.queuedDeadline else { return }
        connection.queuedDeadline = deadline
        timers.push(.init(deadline: deadline, fd: connection.fd, serial: connection.serial))
    }

    private func runDueTimers() {
        while let entry = timers.popDue(now) {
            guard let connection = connection(entry.fd, entry.serial), connection.queuedDeadline == entry.deadline else { continue }
            connection.queuedDeadline = 0
            let deadline = connection.deadline(limits)
            if deadline == 0 { continue }
            if deadline > now {
                schedule(connection)
                continue
            }
            expire(connection)
        }
        if announcements.retryAt != 0, now >= announcements.retryAt { announcements.flush(now: now, via: notifier) }
        if let watchdogInterval, now >= nextWatchdog {
            notifier.watchdog()  // never blocks; one that does not fit is dropped
            nextWatchdog = now + watchdogInterval
        }
        if draining, now >= drainDeadline {
            log("drain deadline passed: cutting \(openConnections) connection(s); exiting")
            finish(status: 0)
        }
        if acceptResumesAt != 0, now >= acceptResumesAt {
            acceptResumesAt = 0
            if !draining && refusalCheckAt == 0 { addListeners() }
        }
        if refusalCheckAt != 0, now >= refusalCheckAt, !draining { checkRefusals() }
    }

    /// A connection's deadline passed: what that means depends on what it was waiting for.
    private func expire(_ connection: Connection) {
        switch connection.mode {
        case .sleeping:
            connection.finishSleep(router: router, limits: limits, draining: draining, now: now)
            settle(connection)
        case .lingering:
            close(connection)
        case .http where connection.pendingOutput == 0 && connection.bodyToSkip > 0:
            // Answered already; the body stopped coming. Nothing more to say: close.
            connection.closeAfterFlush = true
            connection.input = []
            settle(connection)
        case .http where connection.pendingOutput == 0 && connection.requestStartedAt != 0:
            HTTPResponse.appendError(.requestTimeout, to: &connection.output)
            connection.closeAfterFlush = true
            connection.input = []
            settle(connection)
        case .http where connection.isIdleHTTP:
            // Our FIN first, as after a response: a request crossing it on the wire gets EOF, not a reset.
            Sys.shutdownWrite(connection.fd)
            connection.mode = .lingering
            connection.modeDeadline = now + limits.lingerTimeout
            settle(connection)
        case .webSocket where connection.pendingOutput == 0 && connection.session.state == .open && connection.requestStartedAt != 0:
            connection.frameTimedOut()
            settle(connection)
        case .webSocket where connection.pendingOutput == 0 && connection.session.state == .open && limits.webSocketIdleTimeout != 0:
            connection.idleExpired(now: now, limits: limits)
            settle(connection)
        case .http, .webSocket:
            close(connection)  // a reader that stopped reading, or no answer to our close frame
        }
    }

    /// The epoll_wait timeout: until the earliest deadline, or forever when nothing is due. Inlined
    /// into the loop: the optimizer stopped doing so once `Epoll.wait` came from another module, and
    /// the call cost 3.7% more instructions per keep-alive request (callgrind).
    @inline(__always)
    private func timeout() -> Int32 {
        var next = timers.next ?? UInt64.max
        if watchdogInterval != nil { next = min(next, nextWatchdog) }
        if draining { next = min(next, drainDeadline) }
        if acceptResumesAt != 0 { next = min(next, acceptResumesAt) }
        if refusalCheckAt != 0 && !draining { next = min(next, refusalCheckAt) }
        if announcements.retryAt != 0 { next = min(next, announcements.retryAt) }
        if next == UInt64.max { return -1 }
        let current = hg_monotonic_ns()
        if next <= current { return 0 }
        return Int32(clamping: (next - current + 999_999) / 1_000_000)
    }

    // MARK: drain

    private func beginDrain(_ signal: Int32) {
        draining = true
        drainDeadline = now + configuration.drainTimeout
        refusalCheckAt = 0
        removeListeners(close: true)
        limits.idleTimeout = min(limits.idleTimeout, limits.drainIdleGrace)
        for case let connection? in connections where connection.isIdleHTTP { connection.lastActivity = now }
        announcements.announce("STOPPING=1", now: now, via: notifier)
        announcements.announce("STATUS=draining", now: now, via: notifier)
        var webSockets = 0
        for case let connection? in connections {
            if connection.goAway(now: now, limits: limits) { webSockets += 1 }
        }
        log("\(signal == SIGINT ? "SIGINT" : "SIGTERM"): draining \(openConnections) connection(s) (\(webSockets) WebSocket(s) sent 1001), deadline \(configuration.drainTimeout / nanosecondsPerSecond) s")
        if openConnections == 0 {
            log("drained: no connections open; exiting")
            finish(status: 0)
        }
        for case let connection? in connections { settle(connection) }
    }

    private func addListeners() {
        guard !listening else { return }
        listening = true
        for fd in listeners { watch(fd, HG_EPOLLIN | Epoll.exclusive, UInt64(UInt32(bitPattern: fd))) }
    }

    /// Adds `fd` to the epoll set. It fails only for lack of kernel memory or `max_user_watches`;
    /// a worker that cannot watch its fds cannot serve, so it stops and the supervisor restarts it.
    private func watch(_ fd: Int32, _ events: UInt32, _ data: UInt64) {
        do { try Epoll.add(epoll, fd, events, data) } catch { preconditionFailure("\(error)") }
    }

    /// Stops accepting. On drain the fds are closed too: the supervisor holds its own copies, so
    /// connections still arriving are served by other workers rather than refused.
    private func removeListeners(close: Bool) {
        for fd in listeners {
            if listening { Epoll.remove(epoll, fd) }
            if close { Sys.close(fd) }
        }
        listening = false
        if close { listeners = [] }
    }

    private func finish(status: Int32) -> Never {
        for path in configuration.ownedPaths { unlink(path) }
        exit(status)
    }

    // MARK: bookkeeping

    private func key(_ connection: Connection) -> UInt64 {
        UInt64(connection.serial) << 32 | UInt64(UInt32(bitPattern: connection.fd))
    }

    private func connection(_ fd: Int32, _ serial: UInt32) -> Connection? {
        guard Int(fd) < connections.count, let connection = connections[Int(fd)], connection.serial == serial else { return nil }
        return connection
    }
}
