import CHyperglass
import Glibc
import SupervisorCore

/// A listening socket the supervisor holds for its whole life and hands to every worker.
struct Listener {
    let fd: Int32
    /// How logs show it: "127.0.0.1:8001", "unix:/run/hyperglass/http.sock".
    let address: String
    /// A socket file we created and must remove at exit, in its checked directory.
    let owned: (directory: SocketDirectory, name: String)?

    var ownedPath: String? { owned.map { $0.directory.path(of: $0.name) } }
}

enum Listeners {
    static let backlog: Int32 = 2048

    /// Sockets passed to us by systemd socket activation (hyperglass.socket), if any.
    /// They are checked like sd_listen_fds() does: LISTEN_PID must be ours.
    static func inherited(environment: [String: String]) throws(SystemError) -> [Listener]? {
        guard let pidText = environment["LISTEN_PID"], Int32(pidText) == getpid(),
              let countText = environment["LISTEN_FDS"], let count = Int32(countText), count > 0 else { return nil }
        var listeners: [Listener] = []
        for fd in 3..<(3 + count) {
            guard hg_socket_type(fd) == Int32(SOCK_STREAM.rawValue) else {
                throw SystemError(operation: "inherited fd \(fd) (LISTEN_FDS) is not a stream socket", errno: ENOTSOCK)
            }
            try Sys.check("fcntl inherited fd \(fd)") { hg_set_cloexec(fd) }
            listeners.append(Listener(fd: fd, address: name(of: fd), owned: nil))
        }
        return listeners
    }

    static func bind(_ addresses: [BindAddress]) throws(SystemError) -> [Listener] {
        var listeners: [Listener] = []
        do {
            for address in addresses { listeners += try bind(address) }
        } catch {
            close(listeners)
            throw error
        }
        return listeners
    }

    static func close(_ listeners: [Listener]) {
        for listener in listeners {
            _ = Glibc.close(listener.fd)
            if let (directory, name) = listener.owned { directory.remove(name) }
        }
    }

    private static func bind(_ address: BindAddress) throws(SystemError) -> [Listener] {
        switch address {
        case let .tcp(host, port):
            var fds = [Int32](repeating: -1, count: 16)
            var gaiError: Int32 = 0
            let count = hg_listen_tcp(host, Int32(port), backlog, &fds, Int32(fds.count), &gaiError)
            if count < 0 {
                if gaiError != 0 {
                    throw SystemError(operation: "bind \(address): cannot resolve '\(host ?? "")': \(String(cString: hg_gai_strerror(gaiError)))", errno: EINVAL)
                }
                let hint = errno == EADDRINUSE ? " (is another server or hyperglass already running? choose another --bind)" : ""
                throw SystemError(operation: "bind \(address)\(hint)", errno: errno)
            }
            return fds.prefix(Int(count)).map { Listener(fd: $0, address: name(of: $0), owned: nil) }
        case let .unix(path) where path.hasPrefix("@"):
            let fd = try Sys.check("bind unix:\(path)") { hg_listen_unix(path, backlog) }
            return [Listener(fd: fd, address: "unix:\(path)", owned: nil)]
        case let .unix(path):
            let slash = path.lastIndex(of: "/")
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            let directory = try SocketDirectory.open(slash.map { String(path[..<$0]) } ?? ".", createMode: nil, purpose: "unix:\(path)")
            // Born 0666 like Gunicorn's with its default umask: a reverse proxy running as another user must connect.
            let fd = try directory.bind(name, type: Int32(SOCK_STREAM.rawValue), mode: 0o666, backlog: backlog, purpose: "unix:\(path)")
            return [Listener(fd: fd, address: "unix:\(path)", owned: (directory, name))]
        }
    }

    static func name(of fd: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard hg_sockname(fd, &buffer, Int32(buffer.count)) == 0 else { return "fd \(fd)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
