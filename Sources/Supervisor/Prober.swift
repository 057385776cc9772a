import CHyperglass
import Glibc
import SupervisorCore

/// HTTP health probes on each worker's own socket, never blocking the loop: a non-blocking connect,
/// one `GET`, and the status line of the answer. Everything else about health is the core's.
final class Prober {
    private struct Probe {
        let pid: Int32
        let startedAt: Instant
        let deadline: Instant
        let timeout: Duration
        var unsent: [UInt8]
        var received: [UInt8] = []
    }

    private var inFlight: [Int32: Probe] = [:]

    enum Started {
        /// Watch this fd; `ready` finishes the probe.
        case inFlight(fd: Int32)
        /// The connect failed: that is the result.
        case failed(ProbeResult)
    }

    /// Starts a probe of `path` (the settings in effect now: a reload, or its rollback, may change them).
    func start(pid: Int32, address: String, path: String, timeout: Duration, at now: Instant) -> Started {
        let fd = hg_connect_unix_nonblocking(address)
        guard fd >= 0 else { return .failed(failed("cannot connect: \(String(cString: strerror(errno)))", since: now, now: now)) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: hyperglass-probe\r\nConnection: close\r\n\r\n".utf8)
        inFlight[fd] = Probe(pid: pid, startedAt: now, deadline: now + timeout, timeout: timeout, unsent: request)
        return .inFlight(fd: fd)
    }

    /// Moves a probe along; its worker and result once it is done (the fd is closed then).
    func ready(_ fd: Int32, at now: Instant) -> (pid: Int32, result: ProbeResult)? {
        guard var probe = inFlight[fd] else { return nil }
        while !probe.unsent.isEmpty {
            switch probe.unsent.withUnsafeBytes({ Sys.send(fd, $0) }) {
            case .bytes(let n): probe.unsent.removeFirst(n)
            case .wouldBlock: inFlight[fd] = probe; return nil
            case .endOfFile: return finish(fd, probe.pid, failed("the connection failed", since: probe.startedAt, now: now))
            case .failed(let error): return finish(fd, probe.pid, failed("the connection failed: \(error)", since: probe.startedAt, now: now))
            }
        }
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            switch buffer.withUnsafeMutableBytes({ Sys.read(fd, $0) }) {
            case .bytes(let n):
                probe.received += buffer[0..<n]
                if let end = probe.received.firstIndex(of: 0x0A) {
                    let line = String(decoding: probe.received[..<end], as: UTF8.self)
                    return finish(fd, probe.pid, judge(statusLine: line, since: probe.startedAt, now: now))
                }
                if probe.received.count > 512 { return finish(fd, probe.pid, failed("no HTTP status line", since: probe.startedAt, now: now)) }
            case .wouldBlock: inFlight[fd] = probe; return nil
            case .endOfFile: return finish(fd, probe.pid, failed("the worker closed the connection without an answer", since: probe.startedAt, now: now))
            case .failed(let error): return finish(fd, probe.pid, failed("the connection failed: \(error)", since: probe.startedAt, now: now))
            }
        }
    }

    /// Ends a probe the loop could not watch, as a failure.
    func abandon(_ fd: Int32, because reason: String, at now: Instant) -> ProbeResult {
        let started = inFlight[fd]?.startedAt ?? now
        return finish(fd, inFlight[fd]?.pid ?? 0, failed("cannot watch the probe: \(reason)", since: started, now: now)).result
    }

    /// Probes past their timeout, as failures.
    func expire(at now: Instant) -> [(pid: Int32, result: ProbeResult)] {
        inFlight.filter { $0.value.deadline <= now }.sorted { $0.key < $1.key }.map { fd, probe in
            finish(fd, probe.pid, failed("no answer within \(probe.timeout.spoken)", since: probe.startedAt, now: now))
        }
    }

    var nextDeadline: Instant? { inFlight.values.map(\.deadline).min() }

    /// Whether the fd is one of ours and still waits to send its request.
    /// Whether `fd` is a probe still waiting: an event of this epoll batch may name one already finished.
    func isInFlight(_ fd: Int32) -> Bool { inFlight[fd] != nil }

    func wantsWrite(_ fd: Int32) -> Bool { !(inFlight[fd]?.unsent.isEmpty ?? true) }

    private func finish(_ fd: Int32, _ pid: Int32, _ result: ProbeResult) -> (pid: Int32, result: ProbeResult) {
        inFlight.removeValue(forKey: fd)
        Sys.close(fd)
        return (pid, result)
    }

    private func judge(statusLine line: String, since start: Instant, now: Instant) -> ProbeResult {
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) else {
            return failed("not an HTTP status line: \(line.prefix(60))", since: start, now: now)
        }
        return ProbeResult(ok: (200..<400).contains(code), latency: now - start, detail: "HTTP \(code)")
    }

    private func failed(_ detail: String, since start: Instant, now: Instant) -> ProbeResult {
        ProbeResult(ok: false, latency: now - start, detail: detail)
    }
}
