import CHyperglass
import ControlProtocol
import Glibc
import SystemCalls

/// Why a request got no reply at all (as opposed to a refusal).
struct ClientError: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32
}

/// One request, one reply, over the supervisor's control socket.
enum ControlClient {
    /// Sends `request` and returns its reply. Lines before it that carry a roll's `progress` (asked for
    /// with `progress`) go to `onProgress` as they arrive.
    static func send(_ request: ControlRequest, to path: String, timeoutSeconds: Int,
                     onProgress: ((JSON) -> Void)? = nil) throws(ClientError) -> JSON {
        let fd = hg_connect_unix(path)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            let hint = errno == EACCES ? " (permission denied: run as root, as the supervisor's user, or as a member of its control_group)"
                : " (is hyperglass running? it opens its control socket once its prestart command has finished; "
                    + "'systemctl status' shows what runs; point --socket or HYPERGLASS_CONTROL_SOCKET at its control socket)"
            throw ClientError(description: "no supervisor is listening at \(path): \(reason)\(hint)", exitCode: 3)
        }
        defer { Sys.close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // A supervisor that refuses a client answers and closes at once, maybe before the request is sent:
        // its reply is still there to read, so a failed send only matters when no reply follows.
        let sendError = sendAll(Array((request.json.serialized + "\n").utf8), to: fd)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        reading: while true {
            while let newline = received.firstIndex(of: 0x0A) {
                let text = String(decoding: received[..<newline], as: UTF8.self)
                if let onProgress, let line = try? JSON.parse(text), line["ok"] == nil, line["progress"] != nil {
                    received.removeSubrange(...newline)
                    onProgress(line)
                    continue
                }
                break reading
            }
            switch buffer.withUnsafeMutableBytes({ Sys.receive(fd, $0) }) {
            case .bytes(let n): received += buffer[0..<n]
            case .wouldBlock:
                throw ClientError(description: "the supervisor at \(path) did not answer within \(timeoutSeconds)s", exitCode: 1)
            case .endOfFile, .failed: break reading
            }
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

    /// Sends every byte (a blocking socket bounded by SO_SNDTIMEO); the reason it stopped short, or nil.
    private static func sendAll(_ bytes: [UInt8], to fd: Int32) -> String? {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                Sys.retryingInterrupts("send fd \(fd)") { Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL)) }
            }
            switch result {
            case .success(let n): offset += n
            case .failure(let error): return error.description
            }
        }
        return nil
    }
}
