import CHyperglass
import Glibc
import SupervisorCore
import SystemCalls

/// The supervisor's own small HTTP listener (`metrics_bind`): `GET /metrics`, `/readyz`, `/livez`.
/// It is bounded like the control socket and never blocks the loop: non-blocking sockets, at most
/// `maxConnections` at once, a request head of at most `maxRequest` bytes that must arrive within
/// `headDeadline` of the connection (and its reply leave within `deadline`), one request per connection,
/// closed after the reply. The answer itself is computed by the loop (`respond`), which owns the pool.
/// Probes must stay answerable whoever else connects (`/livez` drives a kubelet's restarts): a newcomer
/// past the cap evicts the oldest connection still waiting for its request instead of being refused, the
/// loop reads a new connection at once (a probe's request is usually there already), and at EMFILE a
/// reserve fd lets accept() go on instead of spinning (issue 25, items 1 and 5).
final class HTTPEndpoint {
    struct Response {
        let status: Int
        let contentType: String
        let body: String
    }

    final class Connection {
        let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        var answered = false
        /// The reply left before the request was read whole (431): after it, our FIN, and what the client
        /// still sends is read and dropped until its FIN or the deadline. Closing with unread input would
        /// send a reset, which can reach the client before the 431 does.
        var discardsInput = false
        var lingering = false
        let acceptedAt: Instant
        /// `headDeadline` after accept until the request is in, then `deadline` after accept for the reply;
        /// never extended by bytes: a client trickling them gets no more time than a silent one.
        var expiresAt: Instant

        init(fd: Int32, at now: Instant) {
            self.fd = fd
            acceptedAt = now
            expiresAt = now + HTTPEndpoint.headDeadline
        }
    }

    static let maxConnections = 16
    static let maxRequest = 8192
    static let deadline: Duration = .seconds(5)
    /// A probe or scraper sends its request with the connection; a silent client holds a place only this long.
    static let headDeadline: Duration = .seconds(1)

    /// Listening sockets (a host name may resolve to several addresses).
    let fds: [Int32]
    let address: String
    private(set) var connections: [Int32: Connection] = [:]
    /// An fd held open only to be given up at EMFILE, so a pending connection can be accepted and answered.
    private var reserveFD: Int32 = open("/dev/null", O_RDONLY | O_CLOEXEC)
    private var epoll: Int32 = -1
    private var listenerTag: UInt64 = 0
    /// Listeners not watched because not even the reserve fd could be had; watched again when a connection
    /// closes, or a second later (the fds may be held by something else).
    private var paused: Set<Int32> = []
    private var pausedUntil: Instant? = nil

    init(bind: BindAddress) throws(SystemError) {
        let listeners: [Listener]
        do {
            listeners = try Listeners.bind([bind])
        } catch {
            throw SystemError(operation: "metrics_bind \(bind): cannot listen (is another exporter or hyperglass using it? choose another metrics_bind)",
                              errno: error.errno)
        }
        fds = listeners.map(\.fd)
        address = listeners.map(\.address).joined(separator: ", ")
    }

    /// The listening sockets an in-place upgrade handed over (Takeover.swift), already bound and listening.
    init(adopting fds: [Int32], address: String) {
        self.fds = fds
        self.address = address
    }

    /// Registers the listening sockets with the loop's epoll as `listenerTag | fd`.
    func attach(epoll: Int32, listenerTag: UInt64) throws(SystemError) {
        self.epoll = epoll
        self.listenerTag = listenerTag
        for fd in fds { try Epoll.add(epoll, fd, HG_EPOLLIN, listenerTag | UInt64(UInt32(bitPattern: fd))) }
    }

    func close() {
        for connection in connections.values { Sys.close(connection.fd) }
        connections.removeAll()
        for fd in fds { Sys.close(fd) }
        if reserveFD >= 0 { Sys.close(reserveFD) }
    }

    /// Accepts what is pending on one listening socket and reads each new connection at once (a probe's
    /// request is usually there, and is answered before another newcomer could evict it); returns those
    /// still open, for the loop to watch. Past the cap the oldest connection still waiting for its request
    /// makes room.
    func acceptAll(from listener: Int32, at now: Instant, respond: (_ method: String, _ path: String, _ query: String) -> Response) -> [Int32] {
        var accepted: [Int32] = []
        for _ in 0..<64 {
            // Room for the next one would be made by closing a connection taken in this very call, whose
            // request may be a moment behind its connect (a probe among a burst of silent newcomers): stop
            // here; the listener stays readable, and the next turn's eviction first gives it a last read.
            if connections.count >= HTTPEndpoint.maxConnections, let oldest = evictionCandidate(), !oldest.answered,
               accepted.contains(oldest.fd) {
                return stillOpen(accepted)
            }
            let fd: Int32
            switch Sys.accept(listener) {
            case .success(let client): fd = client
            case .failure(let error) where error.rawValue == EMFILE || error.rawValue == ENFILE:
                // accept() says EMFILE before it looks at the queue: with nobody waiting, evicting would
                // close the connection just taken (a probe whose request is still on its way) for no one.
                guard Sys.hasPendingConnection(listener) else { return stillOpen(accepted) }
                // Out of fds: one of our own connections, else the reserve, makes room for this one (not
                // one taken in this call: as above, the next turn reads it once more first).
                if let oldest = evictionCandidate() {
                    if !oldest.answered, accepted.contains(oldest.fd) { return stillOpen(accepted) }
                    if !oldest.answered { readable(oldest.fd, respond: respond) }
                    if isOpen(oldest.fd) { drop(oldest) }
                    continue
                }
                guard reserveFD >= 0 else { pause(listener, at: now); return stillOpen(accepted) }
                Sys.close(reserveFD)
                reserveFD = -1
                if case .success(let client) = Sys.accept(listener) { fd = client } else { fd = -1 }
                reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
            case .failure:
                return stillOpen(accepted)  // EAGAIN, or an aborted connection: nothing more to take now
            }
            makeRoom(respond: respond)
            connections[fd] = Connection(fd: fd, at: now)
            accepted.append(fd)
            readable(fd, respond: respond)
        }
        return stillOpen(accepted)
    }

    /// Those of `accepted` still open, once each: an fd evicted within the batch may have been accepted again.
    private func stillOpen(_ accepted: [Int32]) -> [Int32] {
        var seen = Set<Int32>()
        return accepted.filter { isOpen($0) && seen.insert($0).inserted }
    }

    /// Below the cap again: the oldest connection still waiting gets a last read (a probe whose request came
    /// just after its accept is answered now), and is closed if its request is still not in.
    private func makeRoom(respond: (_ method: String, _ path: String, _ query: String) -> Response) {
        for _ in 0..<HTTPEndpoint.maxConnections where connections.count >= HTTPEndpoint.maxConnections {
            guard let oldest = evictionCandidate() else { return }
            if !oldest.answered { readable(oldest.fd, respond: respond) }
            if isOpen(oldest.fd), !oldest.answered || connections.count >= HTTPEndpoint.maxConnections { drop(oldest) }
        }
    }

    /// The connection to close for a newcomer: the oldest still waiting for its request, else the oldest.
    private func evictionCandidate() -> Connection? {
        if let lingering = connections.values.filter(\.lingering).min(by: { $0.acceptedAt < $1.acceptedAt }) { return lingering }
        let waiting = connections.values.filter { !$0.answered }
        return (waiting.isEmpty ? Array(connections.values) : waiting).min { $0.acceptedAt < $1.acceptedAt }
    }

    private func pause(_ listener: Int32, at now: Instant) {
        // A readable listener that cannot be accepted from would wake the loop forever.
        guard epoll >= 0, paused.insert(listener).inserted else { return }
        Epoll.modify(epoll, listener, 0, listenerTag | UInt64(UInt32(bitPattern: listener)))
        pausedUntil = now + .seconds(1)
    }

    private func resumeAccepting() {
        for listener in paused { Epoll.modify(epoll, listener, HG_EPOLLIN, listenerTag | UInt64(UInt32(bitPattern: listener))) }
        paused.removeAll()
        pausedUntil = nil
        if reserveFD < 0 { reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC) }
    }

    /// Reads the request; once its head is complete, queues the reply from `respond` and starts sending it.
    func readable(_ fd: Int32, respond: (_ method: String, _ path: String, _ query: String) -> Response) {
        guard let connection = connections[fd] else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        if connection.lingering {
            for _ in 0..<64 {
                switch buffer.withUnsafeMutableBytes({ Sys.read(fd, $0) }) {
                case .bytes: continue
                case .wouldBlock: return
                case .endOfFile, .failed: return drop(connection)
                }
            }
            return
        }
        while !connection.answered {
            let n: Int
            switch buffer.withUnsafeMutableBytes({ Sys.read(fd, $0) }) {
            case .bytes(let count): n = count
            case .wouldBlock: return
            case .endOfFile, .failed: return drop(connection)
            }
            connection.input += buffer[0..<n]
            if let request = HTTPEndpoint.requestLine(connection.input) {
                answer(connection, request.method == "GET" || request.method == "HEAD"
                       ? respond(request.method, request.path, request.query)
                       : Response(status: 405, contentType: "text/plain; charset=utf-8", body: "only GET and HEAD\n"),
                       head: request.method == "HEAD")
            } else if connection.input.count > HTTPEndpoint.maxRequest {
                connection.discardsInput = true
                answer(connection, Response(status: 431, contentType: "text/plain; charset=utf-8",
                                            body: "request head longer than \(HTTPEndpoint.maxRequest) bytes\n"), head: false)
            }
        }
    }

    private func answer(_ connection: Connection, _ response: Response, head: Bool) {
        connection.answered = true
        connection.expiresAt = connection.acceptedAt + HTTPEndpoint.deadline
        connection.input = []
        connection.output = HTTPEndpoint.encode(response, bodyless: head)
        flush(connection)
    }

    /// Sends what the socket takes; closes the connection once the whole reply is out.
    private func flush(_ connection: Connection) {
        while !connection.output.isEmpty {
            switch connection.output.withUnsafeBytes({ Sys.send(connection.fd, $0) }) {
            case .bytes(let n): connection.output.removeFirst(n)
            case .wouldBlock: return
            case .endOfFile, .failed: return drop(connection)  // the peer went away
            }
        }
        guard connection.discardsInput else { return drop(connection) }
        _ = shutdown(connection.fd, Int32(SHUT_WR))
        connection.lingering = true
    }

    /// Whether the connection only waits for the client's FIN now (the loop watches it for input again).
    func isLingering(_ fd: Int32) -> Bool { connections[fd]?.lingering ?? false }

    func writable(_ fd: Int32) {
        if let connection = connections[fd] { flush(connection) }
    }

    func isOpen(_ fd: Int32) -> Bool { connections[fd] != nil }

    /// For an in-place upgrade: the connections whose request is not (wholly) in yet, which the new image
    /// goes on reading (an answered one has its reply in flight or sent, and is closed by the exec).
    var unanswered: [CarriedHTTPClient] {
        connections.values.filter { !$0.answered && !$0.lingering && !$0.discardsInput && $0.output.isEmpty }
            .sorted { $0.fd < $1.fd }.map { CarriedHTTPClient(fd: $0.fd, acceptedAt: $0.acceptedAt, unread: $0.input) }
    }

    /// A connection the old image accepted (Takeover.swift), with what it had read; its deadline runs from its accept.
    /// Returns whether it was taken (not past the cap: the newest ones are closed).
    func adopt(_ client: CarriedHTTPClient) -> Bool {
        guard connections.count < HTTPEndpoint.maxConnections, connections[client.fd] == nil else {
            Sys.close(client.fd)
            return false
        }
        let connection = Connection(fd: client.fd, at: client.acceptedAt)
        connection.input = client.unread
        connections[client.fd] = connection
        return true
    }

    func disconnect(_ fd: Int32) {
        if let connection = connections[fd] { drop(connection) }
    }

    func wantsWrite(_ fd: Int32) -> Bool { !(connections[fd]?.output.isEmpty ?? true) }

    var nextDeadline: Instant? { (connections.values.map(\.expiresAt) + [pausedUntil].compactMap { $0 }).min() }

    /// Closes connections past their deadline, whatever they were doing; resumes a paused accept when due.
    func expire(at now: Instant) {
        for connection in Array(connections.values) where connection.expiresAt <= now { drop(connection) }
        if let pausedUntil, pausedUntil <= now { resumeAccepting() }
    }

    private func drop(_ connection: Connection) {
        connections.removeValue(forKey: connection.fd)
        Sys.close(connection.fd)  // closing removes it from epoll too
        // The fd just freed becomes the reserve again before anything else of ours can take it.
        if reserveFD < 0 { reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC) }
        if !paused.isEmpty { resumeAccepting() }
    }

    // MARK: - HTTP/1.x, just enough

    /// The method, path and query once the request head is complete ("\r\n\r\n" or "\n\n").
    static func requestLine(_ bytes: [UInt8]) -> (method: String, path: String, query: String)? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("\r\n\r\n") || text.contains("\n\n") else { return nil }
        let words = text.prefix { $0 != "\r" && $0 != "\n" }.split(separator: " ")
        guard words.count >= 2 else { return ("", "", "") }
        var target = words[1]
        // Absolute form ("http://host:9101/livez", RFC 9112 §3.2.2: a server must accept it): the path.
        if !target.hasPrefix("/"), let colon = target.firstIndex(of: ":"), target[colon...].hasPrefix("://") {
            let authorityAndPath = target[target.index(colon, offsetBy: 3)...]
            target = authorityAndPath.firstIndex(of: "/").map { authorityAndPath[$0...] } ?? "/"
        }
        let question = target.firstIndex(of: "?")
        return (String(words[0]), String(target[..<(question ?? target.endIndex)]),
                question.map { String(target[target.index(after: $0)...]) } ?? "")
    }

    static func encode(_ response: Response, bodyless: Bool = false) -> [UInt8] {
        let reasons = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large",
                       503: "Service Unavailable"]
        let body = Array(response.body.utf8)
        let head = "HTTP/1.1 \(response.status) \(reasons[response.status] ?? "Status")\r\n"
            + "Content-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\n"
            + "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + (bodyless ? [] : body)
    }
}
