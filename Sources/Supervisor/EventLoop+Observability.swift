import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore
import SystemCalls

/// Pool events out to the journal and to `hyperglassctl events` followers; `/metrics`, `/readyz` and
/// `/livez` on the `metrics_bind` listener; the `metrics` control request.
extension EventLoop {
    /// Unsent bytes a follower may have before it is dropped: it reads too slowly, and we do not buffer for it.
    static let followerBacklog = 64 * 1024

    /// Logs a pool event (structured in the journal, a plain line elsewhere) and tells every follower.
    func report(_ event: PoolEvent) {
        log(event)  // debug events reach followers even when the log leaves them out
        guard !followers.isEmpty else { return }
        let line = EventLoop.json(event, at: EventLoop.wallClock())
        for (fd, follower) in followers.sorted(by: { $0.key < $1.key }) {
            guard let connection = control.clients[fd], connection === follower else {
                followers.removeValue(forKey: fd)  // it went away (and its fd may belong to someone else now)
                continue
            }
            if control.pendingOutput(fd) > EventLoop.followerBacklog {
                log(.warning, "dropped a 'hyperglassctl events' follower: it read too slowly (\(EventLoop.followerBacklog / 1024) KiB unread)")
                control.disconnect(fd)
                followers.removeValue(forKey: fd)
                continue
            }
            control.reply(to: fd, line, at: Sys.now)
        }
    }

    /// At exit: each follower's last line says the stream ends here, so `hyperglassctl events` can tell a
    /// supervisor that stopped (exit 0) from one that dropped it or died (no such line; exit 1).
    func endEventStreams() {
        let end = ControlReply.success([("end", .string("the supervisor stopped"))])
        for fd in followers.keys.sorted() { control.reply(to: fd, end, close: true, at: Sys.now) }
        followers.removeAll()
    }

    /// The reply to `events`: the connection turns into a stream with no read deadline.
    func follow(from fd: Int32) -> JSON {
        if let connection = control.clients[fd] { followers[fd] = connection }
        control.markAwaiting(fd, until: Instant(nanoseconds: UInt64.max / 2))
        return ControlReply.success([("following", .bool(true))])
    }

    static func json(_ event: PoolEvent, at time: Double) -> JSON {
        var members: [(String, JSON)] = [("event", .string(event.kind.rawValue))]
        if let slot = event.slot { members.append(("worker", .number(Double(slot)))) }
        if let pid = event.pid { members.append(("pid", .number(Double(pid)))) }
        if let generation = event.generation { members.append(("generation", .number(Double(generation)))) }
        if let reason = event.reason { members.append(("reason", .string(reason.rawValue))) }
        if let roll = event.roll { members.append(("roll", .string(roll.rawValue))) }
        if let succeeded = event.succeeded { members.append(("ok", .bool(succeeded))) }
        if let duration = event.duration { members.append(("duration_seconds", .number(duration.seconds))) }
        let level = ["error", "warning", "notice", "info", "debug"][max(0, min(4, event.level.rawValue - 3))]
        members += [("level", .string(level)), ("message", .string(event.message)), ("time", .number(time))]
        return .object(members)
    }

    static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000
    }

    /// The `metrics` control request's text: always rendered afresh (the socket's clients are few and
    /// known; `/metrics` on the open listener is the one served from `collector.scrape`).
    func metricsText() -> String {
        lookAtBacklog()
        return PrometheusText.render(collector.snapshot(pool: pool, at: Sys.now))
    }

    /// A fresh look at the listeners' queues before a readiness verdict (`backlog_wait`): on demand, so an idle
    /// pool sleeps; at most one look per 100 ms, so a flood of probes costs no more.
    func lookAtBacklog() {
        guard !pool.backlog.isFresh(at: Sys.now) else { return }
        dispatch(.backlogSampled(BacklogProbe.sample(listeners)))
    }

    /// Answers one request on the `metrics_bind` listener.
    func httpResponse(method: String, path: String, query: String) -> HTTPEndpoint.Response {
        let text = "text/plain; charset=utf-8"
        switch path {
        case "/metrics":
            lookAtBacklog()
            return .init(status: 200, contentType: PrometheusText.contentType, body: collector.scrape(pool: pool, at: Sys.now))
        case "/readyz":
            let share: Double?
            do { share = try ReadyShare.inQuery(query) } catch {
                return .init(status: 400, contentType: text, body: error.message + "\n")
            }
            lookAtBacklog()
            let answer = HealthEndpoints.readiness(pool, share: share ?? ReadyShare.defaultShare, at: Sys.now)
            return .init(status: answer.ok ? 200 : 503, contentType: text, body: answer.text + "\n")
        case "/livez":
            let answer = HealthEndpoints.liveness(pool, at: Sys.now)
            return .init(status: answer.ok ? 200 : 503, contentType: text, body: answer.text + "\n")
        default: return .init(status: 404, contentType: text, body: "not found; try /metrics, /readyz or /livez\n")
        }
    }

    func httpListenerReady(_ listener: Int32) {
        guard let http else { return }
        let respond = { (method: String, path: String, query: String) in self.httpResponse(method: method, path: path, query: query) }
        for fd in http.acceptAll(from: listener, at: Sys.now, respond: respond) {
            // A connection the loop cannot watch would never be answered or closed.
            let interest = http.wantsWrite(fd) ? HG_EPOLLOUT : HG_EPOLLIN | HG_EPOLLRDHUP
            do { try Epoll.add(epoll, fd, interest, EventLoop.httpTag | UInt64(UInt32(bitPattern: fd))) } catch { http.disconnect(fd) }
        }
        armTimer()
    }

    /// Metrics connections the old image accepted and had not answered (Upgrade.swift): watched again.
    func adopt(httpClients: [CarriedHTTPClient]) {
        guard let http else {
            for client in httpClients { Sys.close(client.fd) }
            return
        }
        for client in httpClients where http.adopt(client) {
            do { try Epoll.add(epoll, client.fd, HG_EPOLLIN | HG_EPOLLRDHUP, EventLoop.httpTag | UInt64(UInt32(bitPattern: client.fd))) } catch { http.disconnect(client.fd) }
        }
    }

    func httpClientReady(_ fd: Int32, events: UInt32) {
        guard let http else { return }
        if events & HG_EPOLLOUT != 0 { http.writable(fd) }
        if events & (HG_EPOLLIN | HG_EPOLLHUP | HG_EPOLLRDHUP | HG_EPOLLERR) != 0 {
            http.readable(fd) { method, path, query in httpResponse(method: method, path: path, query: query) }
        }
        if http.isOpen(fd), http.wantsWrite(fd) {
            Epoll.modify(epoll, fd, HG_EPOLLOUT, EventLoop.httpTag | UInt64(UInt32(bitPattern: fd)))
        } else if events & HG_EPOLLOUT != 0, http.isLingering(fd) {
            Epoll.modify(epoll, fd, HG_EPOLLIN | HG_EPOLLRDHUP, EventLoop.httpTag | UInt64(UInt32(bitPattern: fd)))
        }
        armTimer()
    }
}
