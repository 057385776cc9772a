import CHyperglass
import ControlProtocol
import Glibc

/// `hyperglassctl events`: one subscription, then the pool's events as JSON lines until the supervisor
/// ends the stream (`{"ok":true,"end":…}`: it stops; exit 0), or the connection ends without that line
/// (it dropped us for reading too slowly, or died; exit 1, message on stderr). Only events reach stdout:
/// an error line goes to stderr (issue 25, item 14: the eviction used to print as an event and exit 0).
enum EventStream {
    static func follow(path: String) throws(ClientError) -> Never {
        let fd = hg_connect_unix(path)
        guard fd >= 0 else {
            throw ClientError(description: "no supervisor is listening at \(path): \(String(cString: strerror(errno))) (is hyperglass running?)", exitCode: 3)
        }
        var request = Array((ControlRequest.events.json.serialized + "\n").utf8)
        _ = request.withUnsafeMutableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var first = true
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if first { throw ClientError(description: "the supervisor at \(path) closed the connection without a reply", exitCode: 1) }
                stderrLine("hyperglassctl: the event stream ended without the supervisor's last line: it dropped this reader for falling behind (read faster, or filter less slowly), or it died")
                exit(1)
            }
            pending += buffer[0..<n]
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if first {
                    first = false
                    // The first line answers the request; the events follow it.
                    guard let reply = try? JSON.parse(line), reply["ok"]?.bool == true else {
                        let reason = (try? JSON.parse(line))?["error"]?.string ?? line
                        throw ClientError(description: reason, exitCode: 1)
                    }
                    continue
                }
                if let message = try? JSON.parse(line), message["event"] == nil {
                    // Not an event: the stream's end, or an error about this reader.
                    if message["ok"]?.bool == true, message["end"] != nil { exit(0) }
                    stderrLine("hyperglassctl: " + (message["error"]?.string ?? line))
                    exit(1)
                }
                // Line-buffered even into a pipe, so `hyperglassctl events | jq` sees each event as it happens.
                var out = Array((line + "\n").utf8)
                _ = out.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
            }
        }
    }
}
