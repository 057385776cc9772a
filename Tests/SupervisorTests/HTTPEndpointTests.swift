import Glibc
import Testing
import SupervisorCore
@testable import Supervisor

/// metrics_bind's accept loop driven by hand against real loopback sockets: what it does with a batch.
@Suite("HTTPEndpoint: a probe among a burst of newcomers", .serialized, .timeLimit(.minutes(1)))
struct HTTPEndpointTests {
    /// A client connected to `port` that has sent nothing yet.
    private func connect(_ port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(result == 0, "connect: \(errno)")
        return fd
    }

    private func port(of fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }

    @Test("a connection whose request is a moment behind is not evicted by newcomers accepted in the same batch; it is answered when its request comes")
    func probeInABurstIsNotEvictedByItsOwnBatch() throws {
        let endpoint = try HTTPEndpoint(bind: .tcp(host: "127.0.0.1", port: 0))
        defer { endpoint.close() }
        let listener = endpoint.fds[0]
        let port = port(of: listener)
        // The probe first in the accept queue, its request not sent yet; then 3 x the cap of silent clients.
        let probe = connect(port)
        let silent = (0..<(3 * HTTPEndpoint.maxConnections)).map { _ in connect(port) }
        defer { for fd in [probe] + silent { Glibc.close(fd) } }
        let respond: (String, String, String) -> HTTPEndpoint.Response = { _, path, _ in
            .init(status: 200, contentType: "text/plain", body: "ok \(path)\n")
        }
        let first = endpoint.acceptAll(from: listener, at: Instant(nanoseconds: 1_000_000_000), respond: respond)
        #expect(first.count == HTTPEndpoint.maxConnections, "one batch takes up to the cap, no more")
        let probeOnServer = try #require(first.first)
        #expect(endpoint.isOpen(probeOnServer), "the probe was closed by newcomers of its own batch")
        // Its request arrives; the next turn reads it (the last read before an eviction) and answers it.
        let request = Array("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(send(probe, request, request.count, 0) == request.count)
        usleep(20_000)
        _ = endpoint.acceptAll(from: listener, at: Instant(nanoseconds: 1_001_000_000), respond: respond)
        var reply = [UInt8](repeating: 0, count: 512)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(probe, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let n = recv(probe, &reply, reply.count, 0)
        #expect(n > 0 && String(decoding: reply[0..<max(n, 0)], as: UTF8.self).hasPrefix("HTTP/1.1 200"), "the probe got no answer (\(n) bytes)")
    }
}
