import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// The control socket's connections: bounded in number, line length and time, so a slow or hostile
/// client is answered with an error and dropped while everyone else is served. It never blocks:
/// reads and writes are non-blocking, and unsent reply bytes wait for EPOLLOUT.
final class ControlServer {
    enum Role { case admin, reader, denied }

    final class Client {
        let fd: Int32
        let role: Role
        let uid: UInt32
        var input: [UInt8] = []
        var output: [UInt8] = []
        var closeAfterFlush = false
        var deadline: Instant
        /// A request is being answered later (workers --wait): no read deadline meanwhile.
        var awaitingReply = false

        init(fd: Int32, role: Role, uid: UInt32, deadline: Instant) {
            self.fd = fd
            self.role = role
            self.uid = uid
            self.deadline = deadline
        }
    }

    static let maxClients = 64
    static let maxLine = 64 * 1024
    /// Time to send a complete line once one has begun.
    static let lineTimeout: Duration = .seconds(5)
    /// Time an idle connection may stay open between requests.
    static let idleTimeout: Duration = .seconds(60)
    static let waitTimeout: Duration = .seconds(900)

    let fd: Int32
    let path: String
    private let groupID: UInt32?
    private(set) var clients: [Int32: Client] = [:]

    init(path: String, group: String?) throws(SystemError) {
        var groupID: UInt32? = nil
        if let group {
            guard let entry = getgrnam(group) else {
                throw SystemError(operation: "control_group '\(group)' does not exist; create it or change control_group", errno: ENOENT)
            }
            groupID = entry.pointee.gr_gid
        }
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty, !Sys.fileExists(directory) {
            try Sys.check("create the control socket's directory \(directory)") { mkdir(directory, 0o755) }
        }
        try Listeners.removeStaleSocket(path)
        // Created with no permission for others; the mode below then opens it to owner and group only.
        let previous = umask(0o177)
        let listening = hg_listen_unix(path, 64)
        umask(previous)
        fd = try Sys.check("listen on the control socket \(path)") { listening }
        chmod(path, 0o660)
        if let groupID { chown(path, UInt32.max, groupID) }
        self.path = path
        self.groupID = groupID
    }

    func close() {
        for client in clients.values { _ = Glibc.close(client.fd) }
        clients.removeAll()
        _ = Glibc.close(fd)
        unlink(path)
    }

    /// Accepts every pending connection; returns the new clients' fds for the loop to watch.
    func acceptAll(at now: Instant) -> [Int32] {
        var accepted: [Int32] = []
        for _ in 0..<256 {
            let client = hg_accept(fd)
            if client < 0 { break }
            var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
            let role: Role = hg_peercred(client, &pid, &uid, &gid) == 0 ? roleOf(pid: pid, uid: uid, gid: gid) : .denied
            let entry = Client(fd: client, role: role, uid: uid, deadline: now + ControlServer.idleTimeout)
            clients[client] = entry
            accepted.append(client)
            if clients.count > ControlServer.maxClients {
                reply(entry, ControlReply.failure("too many control connections (\(ControlServer.maxClients)); try again later"), close: true)
            } else if role == .denied {
                let hint = groupID == nil ? "run as root or as the supervisor's user" : "run as root, as the supervisor's user, or as a member of control_group (read-only)"
                reply(entry, ControlReply.failure("permission denied: uid \(uid) may not use this control socket; \(hint)"), close: true)
            }
        }
        return accepted.filter { clients[$0] != nil }
    }

    private func roleOf(pid: Int32, uid: UInt32, gid: UInt32) -> Role {
        if uid == 0 || uid == getuid() { return .admin }
        guard let groupID else { return .denied }
        if gid == groupID { return .reader }
        // Supplementary groups are not in SO_PEERCRED; /proc has them.
        if let text = try? Sys.readFile("/proc/\(pid)/status"),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") }),
           line.dropFirst(7).split(separator: " ").contains(where: { UInt32($0) == groupID }) {
            return .reader
        }
        return .denied
    }

    /// Reads what a client sent; returns complete request lines. Errors and limits close the client.
    func readable(_ fd: Int32, at now: Instant) -> [String] {
        guard let client = clients[fd], !client.closeAfterFlush else { return [] }
        var buffer = [UInt8](repeating: 0, count: 16384)
        var lines: [String] = []
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n == 0 { drop(client); return [] }
            if n < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN { drop(client) }
                break
            }
            client.input += buffer[0..<n]
            while let newline = client.input.firstIndex(of: 0x0A) {
                lines.append(String(decoding: client.input[..<newline], as: UTF8.self))
                client.input.removeSubrange(...newline)
            }
            if client.input.count > ControlServer.maxLine {
                reply(client, ControlReply.failure("request line longer than \(ControlServer.maxLine) bytes"), close: true)
                return []
            }
        }
        client.deadline = now + (client.input.isEmpty ? ControlServer.idleTimeout : ControlServer.lineTimeout)
        return lines
    }

    func role(of fd: Int32) -> Role? { clients[fd]?.role }

    /// Queues a reply line and writes what the socket takes now.
    func reply(to fd: Int32, _ json: JSON, close: Bool = false) {
        guard let client = clients[fd] else { return }
        reply(client, json, close: close)
    }

    private func reply(_ client: Client, _ json: JSON, close: Bool) {
        client.awaitingReply = false
        client.output += Array((json.serialized + "\n").utf8)
        client.closeAfterFlush = client.closeAfterFlush || close
        flush(client)
    }

    func markAwaiting(_ fd: Int32, until deadline: Instant) {
        clients[fd]?.awaitingReply = true
        clients[fd]?.deadline = deadline
    }

    /// Writes pending output; returns whether the client still wants EPOLLOUT.
    @discardableResult
    func flush(_ client: Client) -> Bool {
        while !client.output.isEmpty {
            let n = client.output.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 { client.output.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return true }
            drop(client)  // the peer went away before reading its reply
            return false
        }
        if client.closeAfterFlush { drop(client) }
        return false
    }

    func writable(_ fd: Int32) -> Bool {
        guard let client = clients[fd] else { return false }
        return flush(client)
    }

    func wantsWrite(_ fd: Int32) -> Bool { !(clients[fd]?.output.isEmpty ?? true) }

    var nextDeadline: Instant? { clients.values.map(\.deadline).min() }

    /// Drops clients past their deadline; one with a half-sent line or a pending wait gets an error first.
    func expire(at now: Instant) {
        for client in Array(clients.values) where client.deadline <= now {
            if client.closeAfterFlush { drop(client); continue }  // it would not even read its error
            let message = client.awaitingReply ? "timed out waiting for the pool"
                : client.input.isEmpty ? nil : "timed out waiting for a complete request line"
            guard let message else { drop(client); continue }
            client.deadline = now + ControlServer.lineTimeout
            reply(client, ControlReply.failure(message), close: true)
        }
    }

    func isOpen(_ fd: Int32) -> Bool { clients[fd] != nil }

    /// Reply bytes not yet taken by the client's socket (for dropping slow `events` followers).
    func pendingOutput(_ fd: Int32) -> Int { clients[fd]?.output.count ?? 0 }

    /// Closes a client at once, unsent output and all.
    func disconnect(_ fd: Int32) {
        if let client = clients[fd] { drop(client) }
    }

    private func drop(_ client: Client) {
        clients.removeValue(forKey: client.fd)
        _ = Glibc.close(client.fd)  // closing removes it from epoll too
    }
}
