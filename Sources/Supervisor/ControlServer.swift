import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// The control socket's connections. No client can hold more than its share or delay anyone else:
/// - at most `maxClients` connections, `maxPerReader` per control_group user; when full, the owner and
///   root still get in, and the connection idle longest gives way to them;
/// - input bounded by `maxLine`, reply bytes by `maxPendingOutput` (reading pauses until the client reads);
/// - a line must be complete `lineTimeout` after its first byte; unread replies drop the client after `writeTimeout`;
/// - the loop serves at most `linesPerTurn` requests, or `timePerTurn`, per turn, one line per client in rotation;
/// - a reserve fd lets accept() make progress at EMFILE instead of spinning on a connection it cannot take.
/// Everything is non-blocking: unsent reply bytes wait for EPOLLOUT.
final class ControlServer {
    enum Role { case admin, reader, denied }

    static let maxClients = 64
    static let maxPerReader = 8
    static let maxLine = 64 * 1024
    static let maxPendingOutput = 256 * 1024
    static let linesPerTurn = 16
    /// A turn stops taking requests once it has spent this long on them.
    static let timePerTurn: Duration = .milliseconds(2)
    static let acceptsPerTurn = 16
    /// Time to send a complete line once its first byte arrived.
    static let lineTimeout: Duration = .seconds(5)
    /// Time an idle connection may stay open between requests.
    static let idleTimeout: Duration = .seconds(60)
    /// Time a client may leave replies unread before it is dropped.
    static let writeTimeout: Duration = .seconds(10)
    static let waitTimeout: Duration = .seconds(900)

    let fd: Int32
    let path: String
    /// The checked directory holding the socket; the runtime directory the workers' private one goes in.
    let directory: SocketDirectory
    private let name: String
    private let groupID: UInt32?
    private(set) var clients: [Int32: ControlConnection] = [:]
    /// An fd held open only to be given up at EMFILE, so the pending connection can be accepted and answered.
    private var reserveFD: Int32
    /// Where the last turn's rotation stopped, so every client gets its turn.
    private var rotation: Int32 = -1
    private var epoll: Int32 = -1
    private var tag: UInt64 = 0
    private var listenerData: UInt64 = 0
    /// Accepting stopped because not even the reserve fd could be had: it resumes when a client closes.
    private var acceptPaused = false

    init(path: String, group: String?) throws(SystemError) {
        let groupID = try ControlServer.groupID(group)
        let slash = path.lastIndex(of: "/")
        directory = try SocketDirectory.open(slash.map { String(path[..<$0]) } ?? ".", createMode: 0o755, purpose: "the control socket")
        name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        // Born 0660 (owner and control_group), never chmod'ed by path afterwards.
        fd = try directory.bind(name, type: Int32(SOCK_STREAM.rawValue), mode: 0o660, group: groupID, backlog: 64, purpose: "the control socket")
        self.path = path
        self.groupID = groupID
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    /// After an upgrade: the listening socket the old image bound, whose backlog held the clients that
    /// connected during the exec. The directory is opened and checked again by path.
    init(adopting fd: Int32, path: String, group: String?) throws(SystemError) {
        groupID = try ControlServer.groupID(group)
        let slash = path.lastIndex(of: "/")
        directory = try SocketDirectory.open(slash.map { String(path[..<$0]) } ?? ".", createMode: nil, purpose: "the control socket")
        name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        self.fd = fd
        self.path = path
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    private static func groupID(_ group: String?) throws(SystemError) -> UInt32? {
        guard let group else { return nil }
        guard let entry = getgrnam(group) else {
            throw SystemError(operation: "control_group '\(group)' does not exist; create it or change control_group", errno: ENOENT)
        }
        return entry.pointee.gr_gid
    }

    /// Registers the listening socket with the loop's epoll; clients are registered as `tag | fd`.
    func attach(epoll: Int32, listenerData: UInt64, clientTag: UInt64) throws(SystemError) {
        self.epoll = epoll
        tag = clientTag
        self.listenerData = listenerData
        try Epoll.add(epoll, fd, HG_EPOLLIN, listenerData)
    }

    func close() {
        for client in clients.values { Sys.close(client.fd) }
        clients.removeAll()
        Sys.close(fd)
        directory.remove(name)
    }

    /// Accepts up to `acceptsPerTurn` pending connections.
    func acceptAll(at now: Instant) {
        for _ in 0..<ControlServer.acceptsPerTurn {
            switch Sys.accept(fd) {
            case .success(let client): admit(client, at: now)
            case .failure(let error) where error.rawValue == EMFILE || error.rawValue == ENFILE:
                // Out of fds: free the reserve, take the connection, and either make room for it or refuse it.
                if reserveFD >= 0 {
                    Sys.close(reserveFD)
                    reserveFD = -1
                    if case .success(let client) = Sys.accept(fd) { admit(client, at: now, outOfDescriptors: true) }
                    reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
                }
                if reserveFD < 0 {
                    // Not even that: a readable listener would wake the loop forever. Wait for a client to close.
                    Epoll.modify(epoll, fd, 0, listenerData)
                    acceptPaused = true
                    return
                }
            case .failure:
                return  // EAGAIN, or an aborted connection: nothing more to take now
            }
        }
    }

    private func admit(_ client: Int32, at now: Instant, outOfDescriptors: Bool = false) {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        let role: Role = hg_peercred(client, &pid, &uid, &gid) == 0 ? roleOf(pid: pid, uid: uid, gid: gid) : .denied
        if role == .denied {
            let hint = groupID == nil ? "run as root or as the supervisor's user" : "run as root, as the supervisor's user, or as a member of control_group (read-only)"
            return refuse(client, "permission denied: uid \(uid) may not use this control socket; \(hint)")
        }
        let full = outOfDescriptors || clients.count >= ControlServer.maxClients
        if role == .reader {
            if clients.values.filter({ $0.uid == uid }).count >= ControlServer.maxPerReader {
                return refuse(client, "too many control connections from uid \(uid) (\(ControlServer.maxPerReader)); close some and try again")
            }
            if full { return refuse(client, "too many control connections (\(ControlServer.maxClients)); try again later") }
        } else if full {
            // The owner and root always get in: the connection idle longest (control_group members first) gives way.
            let victim = clients.values.min { a, b in
                (a.role == .admin ? 1 : 0, a.lastRequestAt) < (b.role == .admin ? 1 : 0, b.lastRequestAt)
            }
            guard let victim else { return refuse(client, "out of file descriptors; raise LimitNOFILE") }
            // At EMFILE the new client took the reserve's fd; the reserve is reopened in the victim's.
            drop(victim, saying: "closed to make room for the supervisor's owner")
        }
        let interest = HG_EPOLLIN | HG_EPOLLRDHUP
        let connection = ControlConnection(fd: client, role: role, uid: uid, at: now, registered: interest)
        do {
            try Epoll.add(epoll, client, interest, tag | UInt64(UInt32(bitPattern: client)))
        } catch {
            return refuse(client, "the supervisor cannot watch another connection (\(error)); try again later")
        }
        clients[client] = connection
    }

    /// A short error, best effort, then close: a refused client holds nothing.
    private func refuse(_ client: Int32, _ message: String) {
        let bytes = Array((ControlReply.failure(message).serialized + "\n").utf8)
        _ = bytes.withUnsafeBytes { Sys.send(client, $0) }
        Sys.close(client)
    }

    private func roleOf(pid: Int32, uid: UInt32, gid: UInt32) -> Role {
        if uid == 0 || uid == getuid() { return .admin }
        guard let groupID else { return .denied }
        if gid == groupID { return .reader }
        // Supplementary groups are not in SO_PEERCRED; /proc has them.
        if let text = try? Sys.readFile("/proc/\(pid)/status", limit: 8192),
           ProcStatus.supplementaryGroups(text).contains(groupID) {
            return .reader
        }
        return .denied
    }

    /// Handles readiness of a client: one read of at most 16 KiB (lines are taken later, by `nextRequests`), and a flush.
    func ready(_ fd: Int32, events: UInt32, at now: Instant) {
        guard let client = clients[fd] else { return }
        if events & HG_EPOLLOUT != 0 { flush(client, at: now) }
        guard clients[fd] != nil else { return }
        if client.wantsRead, events & (HG_EPOLLIN | HG_EPOLLRDHUP | HG_EPOLLHUP | HG_EPOLLERR) != 0 {
            var buffer = [UInt8](repeating: 0, count: 16384)
            let result = buffer.withUnsafeMutableBytes { Sys.read(fd, $0) }
            switch result {
            case .bytes(let n):
                buffer.withUnsafeBytes { client.received(UnsafeRawBufferPointer(rebasing: $0[..<n]), at: now) }
                if client.unfinishedLength > ControlServer.maxLine {
                    reply(client, ControlReply.failure("request line longer than \(ControlServer.maxLine) bytes"), close: true, at: now)
                }
            case .endOfFile: client.readClosed = true
            case .wouldBlock: break
            case .failed: return drop(client)
            }
        } else if events & (HG_EPOLLHUP | HG_EPOLLERR) != 0, !client.wantsRead, !client.hasCompleteLine || client.closeAfterFlush {
            // The peer is gone both ways and nothing it sent is left to execute: no one will read a reply.
            return drop(client)
        }
        settle(client)
    }

    /// The next request line, from the client after the last one served that may be answered now:
    /// every client gets its turn, one line at a time.
    func nextRequest(at now: Instant) -> (fd: Int32, line: String)? {
        let order = clients.keys.sorted()
        let start = order.firstIndex { $0 > rotation } ?? 0
        for fd in order[start...] + order[..<start] {
            guard let client = clients[fd], !client.closeAfterFlush, client.pendingOutput < ControlServer.maxPendingOutput,
                  let line = client.takeLine(at: now) else { continue }
            rotation = fd
            return (fd, line)
        }
        return nil
    }

    /// Whether complete lines wait for a turn: the loop polls instead of sleeping then.
    var hasBacklog: Bool {
        clients.values.contains { !$0.closeAfterFlush && $0.pendingOutput < ControlServer.maxPendingOutput && $0.hasCompleteLine }
    }

    func role(of fd: Int32) -> Role? { clients[fd]?.role }

    /// Queues a reply line and writes what the socket takes now. `answersWait` ends a `--wait`.
    func reply(to fd: Int32, _ json: JSON, close: Bool = false, answersWait: Bool = false, at now: Instant) {
        guard let client = clients[fd] else { return }
        if answersWait { client.awaitUntil = nil }
        reply(client, json, close: close, at: now)
        if clients[fd] != nil { settle(client) }
    }

    private func reply(_ client: ControlConnection, _ json: JSON, close: Bool, at now: Instant) {
        client.queue(Array((json.serialized + "\n").utf8), at: now)
        client.closeAfterFlush = client.closeAfterFlush || close
        if close { client.awaitUntil = nil }
        flush(client, at: now)
    }

    func markAwaiting(_ fd: Int32, until deadline: Instant) {
        clients[fd]?.awaitUntil = deadline
    }

    private func flush(_ client: ControlConnection, at now: Instant) {
        while client.pendingOutput > 0 {
            switch client.unsent({ Sys.send(client.fd, $0) }) {
            case .bytes(let n): client.wrote(n, at: now)
            case .wouldBlock: return
            case .endOfFile, .failed: return drop(client)  // the peer went away before reading its reply
            }
        }
    }

    /// Closes a finished client, or brings its epoll interest in step with what it waits for.
    private func settle(_ client: ControlConnection) {
        guard clients[client.fd] != nil else { return }
        if client.finished { return drop(client) }
        let interest = (client.wantsRead ? HG_EPOLLIN | HG_EPOLLRDHUP : 0) | (client.pendingOutput > 0 ? HG_EPOLLOUT : 0)
        if interest != client.registered {
            Epoll.modify(epoll, client.fd, interest, tag | UInt64(UInt32(bitPattern: client.fd)))
            client.registered = interest
        }
    }

    /// After a turn's replies: every client's interest in step.
    func settleAll() { for client in Array(clients.values) { settle(client) } }

    var nextDeadline: Instant? { clients.values.map(\.deadline).min() }

    /// Acts on passed deadlines: a half-sent line or an unanswered wait gets an error first; an idle client
    /// or one that does not read its replies is dropped.
    func expire(at now: Instant) {
        for client in Array(clients.values) {
            switch client.expiry(at: now) {
            case nil: continue
            case .writeStalled, .idle: drop(client)
            case .waitTimedOut: reply(client, ControlReply.failure("timed out waiting for the pool"), close: true, at: now)
            case .lineTimedOut: reply(client, ControlReply.failure("timed out waiting for a complete request line"), close: true, at: now)
            }
            if clients[client.fd] != nil { settle(client) }
        }
    }

    func isOpen(_ fd: Int32) -> Bool { clients[fd] != nil }

    /// After an upgrade: a connection the old image had open, with what it sent and was not answered yet.
    /// It is admitted again as if just accepted (its peer checked again), then its bytes are taken in.
    func adoptClient(_ fd: Int32, unread: [UInt8], at now: Instant) -> ControlConnection? {
        admit(fd, at: now)
        guard let client = clients[fd] else { return nil }
        if !unread.isEmpty { unread.withUnsafeBytes { client.received($0, at: now) } }
        settle(client)
        return client
    }

    /// Reply bytes not yet taken by the client's socket (for dropping slow `events` followers).
    func pendingOutput(_ fd: Int32) -> Int { clients[fd]?.pendingOutput ?? 0 }

    /// Closes a client at once, unsent output and all.
    func disconnect(_ fd: Int32) {
        if let client = clients[fd] { drop(client) }
    }

    private func drop(_ client: ControlConnection, saying message: String? = nil) {
        if let message {
            let bytes = Array((ControlReply.failure(message).serialized + "\n").utf8)
            _ = bytes.withUnsafeBytes { Sys.send(client.fd, $0) }
        }
        clients.removeValue(forKey: client.fd)
        Sys.close(client.fd)  // closing removes it from epoll too
        if acceptPaused {
            reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if reserveFD >= 0 {
                acceptPaused = false
                Epoll.modify(epoll, fd, HG_EPOLLIN, listenerData)
            }
        }
    }
}
