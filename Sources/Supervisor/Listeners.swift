import CHyperglass
import Glibc
import SupervisorCore

/// A listening socket the supervisor holds for its whole life and hands to every worker.
struct Listener {
    let fd: Int32
    /// How logs show it: "127.0.0.1:8001", "unix:/run/hyperglass/http.sock".
    let address: String
    /// A socket file we created and must remove at exit.
    let ownedPath: String?
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
            listeners.append(Listener(fd: fd, address: name(of: fd), ownedPath: nil))
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
            if let path = listener.ownedPath { unlink(path) }
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
            return fds.prefix(Int(count)).map { Listener(fd: $0, address: name(of: $0), ownedPath: nil) }
        case let .unix(path):
            if !path.hasPrefix("@") { try removeStaleSocket(path) }
            let fd = try Sys.check("bind unix:\(path)") { hg_listen_unix(path, backlog) }
            // Like Gunicorn with its default umask: a reverse proxy running as another user must connect.
            if !path.hasPrefix("@") { chmod(path, 0o666) }
            return [Listener(fd: fd, address: "unix:\(path)", ownedPath: path.hasPrefix("@") ? nil : path)]
        }
    }

    /// A socket file left by a crashed process is replaced; one a live process serves is not.
    static func removeStaleSocket(_ path: String) throws(SystemError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw SystemError(operation: "bind unix:\(path): a file that is not a socket is in the way; remove it or choose another path", errno: EEXIST)
        }
        guard hg_unix_socket_alive(path) == 0 else {
            throw SystemError(operation: "bind unix:\(path): another process is listening there", errno: EADDRINUSE)
        }
        unlink(path)
    }

    static func name(of fd: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard hg_sockname(fd, &buffer, Int32(buffer.count)) == 0 else { return "fd \(fd)" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
