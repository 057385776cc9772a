import CHyperglass
import ControlProtocol
import Glibc

/// Why a request got no reply at all (as opposed to a refusal).
struct ClientError: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32
}

/// One request, one reply, over the supervisor's control socket.
enum ControlClient {
    static func send(_ request: ControlRequest, to path: String, timeoutSeconds: Int) throws(ClientError) -> JSON {
        let fd = hg_connect_unix(path)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            let hint = errno == EACCES ? " (permission denied: run as root, as the supervisor's user, or as a member of its control_group)"
                : " (is hyperglass running? point --socket or HYPERGLASS_CONTROL_SOCKET at its control socket)"
            throw ClientError(description: "no supervisor is listening at \(path): \(reason)\(hint)", exitCode: 3)
        }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var line = Array((request.json.serialized + "\n").utf8)
        let sent = line.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // A supervisor that refuses a client answers and closes at once, maybe before the request is sent:
        // its reply is still there to read, so a failed send only matters when no reply follows.
        let sendError = sent == line.count ? nil : String(cString: strerror(errno))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !received.contains(0x0A) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw ClientError(description: "the supervisor at \(path) did not answer within \(timeoutSeconds)s", exitCode: 1)
            }
            if n <= 0 { break }
            received += buffer[0..<n]
            if received.count > 64 << 20 { break }
        }
        let text = String(decoding: received.prefix { $0 != 0x0A }, as: UTF8.self)
        if text.isEmpty, let sendError { throw ClientError(description: "cannot send to \(path): \(sendError)", exitCode: 3) }
        guard !text.isEmpty else { throw ClientError(description: "the supervisor at \(path) closed the connection without a reply", exitCode: 1) }
        do {
            return try JSON.parse(text)
        } catch {
            throw ClientError(description: "unreadable reply from \(path): \(error)", exitCode: 1)
        }
    }
}
