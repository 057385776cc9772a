import CHyperglass
import Glibc

/// Opens our own listening sockets for `--bind`, when no supervisor passed any.
enum Bind {
    struct Failure: Error {
        let message: String
    }

    /// Listening fds for one address, and the Unix socket path we created (to remove on exit).
    static func listen(_ address: String) throws(Failure) -> (fds: [Int32], path: String?) {
        if address.hasPrefix("unix:") {
            let path = String(address.dropFirst(5))
            guard !path.isEmpty else { throw Failure(message: "--bind '\(address)': empty Unix socket path") }
            // A socket file left by a crashed run would make bind() fail with EADDRINUSE.
            if !path.hasPrefix("@"), hg_unix_socket_alive(path) == 0 { unlink(path) }
            let fd = hg_listen_unix(path, 2048)
            guard fd >= 0 else { throw Failure(message: "--bind '\(address)': \(String(cString: strerror(errno)))") }
            return ([fd], path.hasPrefix("@") ? nil : path)
        }
        guard let colon = address.lastIndex(of: ":"), let port = Int32(address[address.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw Failure(message: "--bind '\(address)': expected HOST:PORT, [IPv6]:PORT, :PORT or unix:PATH")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var fds = [Int32](repeating: -1, count: 8)
        var gaiError: Int32 = 0
        let count = fds.withUnsafeMutableBufferPointer { buffer in
            host.isEmpty
                ? hg_listen_tcp(nil, port, 2048, buffer.baseAddress, 8, &gaiError)
                : hg_listen_tcp(host, port, 2048, buffer.baseAddress, 8, &gaiError)
        }
        guard count > 0 else {
            let reason = gaiError != 0 ? String(cString: hg_gai_strerror(gaiError)) : String(cString: strerror(errno))
            throw Failure(message: "--bind '\(address)': \(reason)")
        }
        return (Array(fds[0..<Int(count)]), nil)
    }
}
