import CHyperglass
import Glibc
import SupervisorCore
import SystemCalls

/// The supervisor's own small HTTP listener (`metrics_bind`): `GET /metrics`, `/readyz`, `/livez`.
/// It is bounded like the control socket and never blocks the loop: non-blocking sockets, at most
/// `maxConnections` at once, a request head of at most `maxRequest` bytes that must arrive (and its reply
/// leave) within `deadline` of the connection, one request per connection, closed after the reply.
/// The answer itself is computed by the loop (`respond`), which owns the pool.
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
        /// Set at accept and never extended: a client trickling bytes gets no more time than a silent one.
        let deadline: Instant

        init(fd: Int32, deadline: Instant) {
            self.fd = fd
            self.deadline = deadline
        }
    }

    static let maxConnections = 16
    static let maxRequest = 8192
    static let deadline: Duration = .seconds(5)

    /// Listening sockets (a host name may resolve to several addresses).
    let fds: [Int32]
    let address: String
    private(set) var connections: [Int32: Connection] = [:]

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

    func close() {
        for connection in connections.values { Sys.close(connection.fd) }
        connections.removeAll()
        for fd in fds { Sys.close(fd) }
    }

    /// Accepts what is pending on one listening socket; returns the new connections for the loop to watch.
    /// Past the cap a connection gets a 503 (best effort, never waited for) and is closed at once.
    func acceptAll(from listener: Int32, at now: Instant) -> [Int32] {
        var accepted: [Int32] = []
        for _ in 0..<64 {
            // EAGAIN, or out of fds (the next readiness retries; the control socket keeps the reserve fd).
            guard case .success(let fd) = Sys.accept(listener) else { break }
            guard connections.count < HTTPEndpoint.maxConnections else {
                let refusal = HTTPEndpoint.encode(Response(status: 503, contentType: "text/plain; charset=utf-8",
                                                           body: "too many connections (\(HTTPEndpoint.maxConnections)); try again\n"))
                _ = refusal.withUnsafeBytes { Sys.send(fd, $0) }
                Sys.close(fd)
                continue
            }
            connections[fd] = Connection(fd: fd, deadline: now + HTTPEndpoint.deadline)
            accepted.append(fd)
        }
        return accepted
    }

    /// Reads the request; once its head is complete, queues the reply from `respond` and starts sending it.
    func readable(_ fd: Int32, respond: (_ method: String, _ path: String, _ query: String) -> Response) {
        guard let connection = connections[fd] else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
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
                answer(connection, Response(status: 431, contentType: "text/plain; charset=utf-8",
                                            body: "request head longer than \(HTTPEndpoint.maxRequest) bytes\n"), head: false)
            }
        }
    }

    private func answer(_ connection: Connection, _ response: Response, head: Bool) {
        connection.answered = true
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
        drop(connection)
    }

    func writable(_ fd: Int32) {
        if let connection = connections[fd] { flush(connection) }
    }

    func isOpen(_ fd: Int32) -> Bool { connections[fd] != nil }

    func disconnect(_ fd: Int32) {
        if let connection = connections[fd] { drop(connection) }
    }

    func wantsWrite(_ fd: Int32) -> Bool { !(connections[fd]?.output.isEmpty ?? true) }

    var nextDeadline: Instant? { connections.values.map(\.deadline).min() }

    /// Closes connections past their deadline, whatever they were doing.
    func expire(at now: Instant) {
        for connection in Array(connections.values) where connection.deadline <= now { drop(connection) }
    }

    private func drop(_ connection: Connection) {
        connections.removeValue(forKey: connection.fd)
        Sys.close(connection.fd)  // closing removes it from epoll too
    }

    // MARK: - HTTP/1.x, just enough

    /// The method, path and query once the request head is complete ("\r\n\r\n" or "\n\n").
    static func requestLine(_ bytes: [UInt8]) -> (method: String, path: String, query: String)? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("\r\n\r\n") || text.contains("\n\n") else { return nil }
        let words = text.prefix { $0 != "\r" && $0 != "\n" }.split(separator: " ")
        guard words.count >= 2 else { return ("", "", "") }
        let target = words[1]
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
