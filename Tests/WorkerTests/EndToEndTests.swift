import Glibc
import Testing
@testable import Worker

/// Drives the built `hyperglass-worker` binary like a client and an operator would.
@Suite("hyperglass-worker end to end", .serialized, .timeLimit(.minutes(1)))
struct EndToEndTests {
    @Test("GET, WebSocket echo, then SIGTERM: the WebSocket gets 1001 and the worker exits 0")
    func drain() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)", "--drain-timeout", "10s"])
        defer { worker.kill() }

        let http = try Client.connect(port: port, within: 5)
        defer { http.close() }
        try http.send("GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        let response = try http.receive(until: "standalone\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))

        let ws = try Client.connect(port: port, within: 5)
        defer { ws.close() }
        try ws.send("GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let handshake = try ws.receive(until: "\r\n\r\n")
        #expect(handshake.hasPrefix("HTTP/1.1 101 "))
        #expect(handshake.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        var frame: [UInt8] = []
        WebSocketFrame.append(opcode: .text, payload: Array("echo me".utf8), mask: (1, 2, 3, 4), to: &frame)
        try ws.send(frame)
        let echo = try ws.receiveBytes(count: 9)
        #expect(echo == [0x81, 7] + Array("echo me".utf8))

        #expect(Glibc.kill(worker.pid, SIGTERM) == 0)
        let close = try ws.receiveBytes(count: 2)
        #expect(close[0] == 0x88)
        let payload = try ws.receiveBytes(count: Int(close[1]))
        #expect(payload.count >= 2 && UInt16(payload[0]) << 8 | UInt16(payload[1]) == 1001)
        var reply: [UInt8] = []
        WebSocketFrame.append(opcode: .close, payload: [0x03, 0xE9], mask: (5, 6, 7, 8), to: &reply)
        try ws.send(reply)
        #expect(try ws.receiveBytes(count: 1).isEmpty, "the worker closes TCP after the close handshake")
        #expect(try worker.wait(seconds: 10) == 0)
    }

    @Test("malformed requests get 400 and the worker keeps serving")
    func malformed() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        for garbage in ["\u{0}\u{1}\u{2}\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"] {
            let client = try Client.connect(port: port, within: 5)
            try client.send(garbage)
            #expect(try client.receive(until: "\r\n").hasPrefix("HTTP/1.1 400 "))
            client.close()
        }
        let client = try Client.connect(port: port, within: 5)
        defer { client.close() }
        try client.send("GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        #expect(try client.receive(until: "ok\n").hasPrefix("HTTP/1.1 200 OK"))
        #expect(Glibc.kill(worker.pid, SIGTERM) == 0)
        client.close()
        #expect(try worker.wait(seconds: 10) == 0)
    }

    @Test("pipelined requests, bodies included, are answered in order on one connection")
    func pipelining() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        let client = try Client.connect(port: port, within: 5)
        defer { client.close() }
        try client.send("POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /sleep?ms=50 HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let all = try client.receive(until: "\r\n\r\nok\n")
        let statuses = all.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("HTTP/1.1 ") }.map { String($0.dropFirst(9).prefix(3)) }
        #expect(statuses == ["405", "404", "200", "200"])
        #expect(all.contains("slept 50 ms"))
        #expect(try client.receiveBytes(count: 1).isEmpty, "Connection: close is honoured")
    }

    @Test("an idle worker with no watchdog never wakes up")
    func idleWakeups() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)"])
        defer { worker.kill() }
        try Client.connect(port: port, within: 5).close()
        usleep(200_000)
        let before = try contextSwitches(worker.pid)
        usleep(1_500_000)
        #expect(try contextSwitches(worker.pid) == before)
    }

    private func contextSwitches(_ pid: pid_t) throws -> String {
        guard let file = fopen("/proc/\(pid)/status", "r") else { throw TestFailure(description: "no /proc/\(pid)/status") }
        defer { fclose(file) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 512)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            let line = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if line.contains("ctxt_switches") { lines.append(line) }
        }
        return lines.joined()
    }

    @Test("an independent client (Python websockets) sees READY, 1001, the slow request finish, exit 0")
    func pythonClient() throws {
        let script = String(#filePath.dropLast("EndToEndTests.swift".count)) + "drain_client.py"
        let python = try Child.spawn("/usr/bin/env", ["python3", script, Child.workerPath])
        defer { python.kill() }
        let status = try python.wait(seconds: 40)
        #expect(status == 0, "drain_client.py failed (needs `pip install websockets`); its output is above")
    }
}
