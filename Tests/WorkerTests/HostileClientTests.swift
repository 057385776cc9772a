import Glibc
import Testing
@testable import Worker

/// The real `hyperglass-worker` against clients (and a supervisor) that do their worst: each test
/// names a way one of them could take memory, time or the event loop from everyone else.
@Suite("hyperglass-worker against hostile clients", .serialized, .timeLimit(.minutes(1)))
struct HostileClientTests {
    private let health = "GET /health HTTP/1.1\r\nHost: test\r\n\r\n"

    @Test("with the supervisor's notify queue full, requests are answered at once and READY=1 follows when it drains")
    func notifyQueueFull() throws {
        let sink = try DatagramSink()
        #expect(try sink.fill() > 0)
        let port = try freePort()
        // A watchdog every 100 ms: before, the first blocking sendto (READY=1) froze the loop for good.
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"],
                                     environment: ["NOTIFY_SOCKET=\(sink.address)", "WATCHDOG_USEC=200000"])
        defer { worker.kill() }
        var slowest = 0.0
        for _ in 0..<10 {
            let client = try Client.connect(port: port, within: 5, receiveTimeout: 2)
            defer { client.close() }
            let start = now()
            try client.send(health)
            #expect(try client.receive(until: "ok\n").hasPrefix("HTTP/1.1 200 OK"))
            slowest = max(slowest, now() - start)
            usleep(150_000)  // spans several watchdog intervals with the queue still full
        }
        #expect(slowest < 0.5, "slowest answer \(slowest) s while the notify queue was full")
        // The supervisor reads again: the READY=1 that did not fit must arrive.
        var messages: [String] = []
        let deadline = now() + 3
        while now() < deadline, !messages.contains(where: { $0.hasPrefix("READY=1") }) {
            messages += sink.drain()
            usleep(20_000)
        }
        #expect(messages.contains { $0.hasPrefix("READY=1") }, "READY=1 was never retried: \(messages.suffix(5))")
        #expect(Glibc.kill(worker.pid, SIGTERM) == 0)
        #expect(try worker.wait(seconds: 10) == 0)
    }

    @Test("a CRLF flood before the request line gets 400 at once and leaves the worker small")
    func crlfFlood() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        let flood = try Client.connect(port: port, within: 5, receiveTimeout: 3)
        defer { flood.close() }
        let chunk = [UInt8]((0..<8192).map { $0 % 2 == 0 ? 13 : 10 })
        let start = now()
        for _ in 0..<64 { sendIgnoringErrors(flood.fd, chunk) }  // 512 KiB of empty lines
        #expect(try flood.receive(until: "\r\n").hasPrefix("HTTP/1.1 400 "))
        #expect(now() - start < 2, "the answer took \(now() - start) s")
        let other = try Client.connect(port: port, within: 5, receiveTimeout: 2)
        defer { other.close() }
        try other.send(health)
        #expect(try other.receive(until: "ok\n").hasPrefix("HTTP/1.1 200 OK"))
        #expect(residentKiB(worker.pid) < 20_000, "the worker grew to \(residentKiB(worker.pid)) KiB")
    }

    @Test("a WebSocket frame stalled one byte short is closed with 1008 at the request timeout")
    func stalledFrame() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)", "--request-timeout", "1s"])
        defer { worker.kill() }
        let ws = try Client.connect(port: port, within: 5, receiveTimeout: 4)
        defer { ws.close() }
        try Self.upgrade(ws)
        var frame: [UInt8] = []
        WebSocketFrame.append(opcode: .binary, payload: [UInt8](repeating: 7, count: 100), mask: (1, 2, 3, 4), to: &frame)
        let start = now()
        try ws.send(Array(frame.dropLast()))
        let close = try Self.expectPolicyClose(ws, oneSecondAfter: start)
        _ = try ws.receiveBytes(count: Int(close.count == 4 ? close[1] : 2) - 2)
        #expect(try ws.receiveBytes(count: 1).isEmpty, "the connection is closed after the close frame")
    }

    @Test("a fragmented WebSocket message whose last fragment never comes is closed with 1008 at the request timeout")
    func stalledMessage() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)", "--request-timeout", "1s"])
        defer { worker.kill() }
        let ws = try Client.connect(port: port, within: 5, receiveTimeout: 4)
        defer { ws.close() }
        try Self.upgrade(ws)
        var first: [UInt8] = []
        WebSocketFrame.append(opcode: .text, fin: false, payload: Array("part one".utf8), mask: (1, 2, 3, 4), to: &first)
        let start = now()
        try ws.send(first)
        // A ping in the middle is a whole frame, but the message is still unfinished.
        usleep(500_000)
        var ping: [UInt8] = []
        WebSocketFrame.append(opcode: .ping, payload: [1], mask: (1, 2, 3, 4), to: &ping)
        try ws.send(ping)
        #expect(try ws.receiveBytes(count: 3) == [0x8A, 1, 1])
        _ = try Self.expectPolicyClose(ws, oneSecondAfter: start)
    }

    @Test("a head dripped a line at a time gets 408 at the request timeout from its first byte")
    func slowLoris() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)", "--request-timeout", "1s"])
        defer { worker.kill() }
        let client = try Client.connect(port: port, within: 5, receiveTimeout: 4)
        defer { client.close() }
        let start = now()
        try client.send("GET / HTTP/1.1\r\nHost: test\r\n")
        var answeredAfter: Double?
        var seen: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        for line in 0..<30 where answeredAfter == nil {
            usleep(100_000)
            sendIgnoringErrors(client.fd, Array("X-Drip-\(line): a\r\n".utf8))
            let n = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { seen += buffer[0..<n]; answeredAfter = now() - start }
        }
        #expect(String(decoding: seen, as: UTF8.self).hasPrefix("HTTP/1.1 408 "))
        let elapsed = try #require(answeredAfter)
        #expect(elapsed > 0.9 && elapsed < 1.6, "408 after \(elapsed) s")
    }

    @Test("a request is answered once its head is here; its body is discarded as it streams in")
    func bodyStreamsThrough() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        let client = try Client.connect(port: port, within: 5, receiveTimeout: 2)
        defer { client.close() }
        try client.send("POST /health HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nhello")
        #expect(try client.receive(until: "\r\n\r\n").hasPrefix("HTTP/1.1 405 "))
        try client.send("world" + health)  // the rest of the body, then the next request
        #expect(try client.receive(until: "ok\n").contains("HTTP/1.1 200 OK"))

        // 40 clients each stop one byte short of a 1 MiB body: before, each held 1 MiB for 30 s.
        let before = residentKiB(worker.pid)
        var slow: [Client] = []
        defer { for client in slow { client.close() } }
        let body = [UInt8](repeating: UInt8(ascii: "b"), count: (1 << 20) - 1)
        for _ in 0..<40 {
            let client = try Client.connect(port: port, within: 5, receiveTimeout: 2)
            slow.append(client)
            try client.send("POST /health HTTP/1.1\r\nHost: test\r\nContent-Length: \(1 << 20)\r\n\r\n")
            try client.send(body)
        }
        for client in slow { #expect(try client.receive(until: "\r\n").hasPrefix("HTTP/1.1 405 ")) }
        let grown = residentKiB(worker.pid) - before
        #expect(grown < 12_000, "40 slow bodies grew the worker by \(grown) KiB")
    }

    @Test("an HTTP/1.1 request without Host is 400 (RFC 9112 §3.2)")
    func missingHost() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        let client = try Client.connect(port: port, within: 5)
        defer { client.close() }
        try client.send("GET / HTTP/1.1\r\n\r\n")
        #expect(try client.receive(until: "\r\n").hasPrefix("HTTP/1.1 400 "))
    }

    @Test("a huge Content-Length is 413 before any body is read")
    func hugeContentLength() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        let client = try Client.connect(port: port, within: 5, receiveTimeout: 2)
        defer { client.close() }
        try client.send("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 999999999999999\r\n\r\n")
        #expect(try client.receive(until: "\r\n").hasPrefix("HTTP/1.1 413 "))
    }

    @Test("out of fds, the connection waiting longest gives way to a new client")
    func idleFlood() throws {
        let port = try freePort()
        // 32 fds: the idle connections below fill the table.
        let worker = try Child.spawn("/usr/bin/prlimit", ["--nofile=32", Child.workerPath, "--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        var idle: [Client] = []
        defer { for client in idle { client.close() } }
        for _ in 0..<48 { idle.append(try Client.connect(port: port, within: 5)) }
        usleep(300_000)
        let client = try Client.connect(port: port, within: 5, receiveTimeout: 2)
        defer { client.close() }
        let start = now()
        try client.send(health)
        #expect(try client.receive(until: "ok\n").hasPrefix("HTTP/1.1 200 OK"))
        #expect(now() - start < 1)
    }

    @Test("the write timeout runs from the last write progress; bytes read from the client do not reset it")
    func writeDeadline() {
        let limits = Limits()
        let connection = Connection(fd: 1000, serial: 1, now: 0, interest: 0)
        connection.output = [UInt8](repeating: 0, count: 100)
        connection.outputWaitingSince = 5 * nanosecondsPerSecond
        connection.lastActivity = 50 * nanosecondsPerSecond  // the client kept sending
        #expect(connection.deadline(limits) == 5 * nanosecondsPerSecond + limits.writeTimeout)
    }

    private func sendIgnoringErrors(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}

extension HostileClientTests {
    /// Completes a WebSocket handshake on `ws`.
    static func upgrade(_ ws: Client) throws {
        try ws.send("GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        #expect(try ws.receive(until: "\r\n\r\n").hasPrefix("HTTP/1.1 101 "))
    }

    /// Reads the head of a close frame and checks it says 1008 (policy violation) about 1 s (the request
    /// timeout these tests set) after `start`; returns the four bytes read.
    static func expectPolicyClose(_ ws: Client, oneSecondAfter start: Double) throws -> [UInt8] {
        let close = try ws.receiveBytes(count: 4)
        let elapsed = now() - start
        #expect(close.count == 4 && close[0] == 0x88 && UInt16(close[2]) << 8 | UInt16(close[3]) == 1008)
        #expect(elapsed > 0.9 && elapsed < 2, "closed after \(elapsed) s")
        return close
    }
}
