import Glibc
import Testing
@testable import Worker

/// `--max-connections` and `--websocket-idle-timeout` on real sockets: the worker bounded without
/// disturbing what it already serves.
@Suite("hyperglass-worker's connection cap and idle WebSocket timeout", .serialized, .timeLimit(.minutes(1)))
struct ConnectionLimitTests {
    private let health = "GET /health HTTP/1.1\r\nHost: test\r\n\r\n"

    /// A masked client frame.
    static func frame(_ opcode: WebSocketFrame.Opcode, _ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        WebSocketFrame.append(opcode: opcode, payload: payload, mask: (9, 8, 7, 6), to: &out)
        return out
    }

    /// Sends a text message and expects it echoed (an unmasked text frame).
    static func expectEcho(_ ws: Client, _ text: String) throws {
        try ws.send(frame(.text, Array(text.utf8)))
        #expect(try ws.receiveBytes(count: 2 + text.utf8.count) == [0x81, UInt8(text.utf8.count)] + Array(text.utf8))
    }

    /// Sends a WebSocket upgrade and returns the response head.
    static func upgradeHead(_ ws: Client) throws -> String {
        try ws.send("GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return try ws.receive(until: "\r\n\r\n")
    }

    @Test("at max_connections a new request and a new WebSocket get 503 with Retry-After; open ones are served on; a close makes room")
    func capRefusesNewcomersOnly() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)", "--max-connections", "2"])
        defer { worker.kill() }
        let http = try Client.connect(port: port, within: 5, receiveTimeout: 3)
        defer { http.close() }
        try http.send(health)
        #expect(try http.receive(until: "ok\n").hasPrefix("HTTP/1.1 200 OK"))
        let ws = try Client.connect(port: port, within: 5, receiveTimeout: 3)
        defer { ws.close() }
        #expect(try Self.upgradeHead(ws).hasPrefix("HTTP/1.1 101 "))

        // Full. A newcomer waits in the accept queue (no other worker could take it), then gets its 503.
        let start = now()
        let third = try Client.connect(port: port, within: 5, receiveTimeout: 3)
        defer { third.close() }
        try third.send(health)
        let refusal = try third.receive(until: "\r\n\r\n")
        #expect(refusal.hasPrefix("HTTP/1.1 503 "), "\(refusal)")
        #expect(refusal.contains("\r\nRetry-After: 1\r\n") && refusal.contains("\r\nConnection: close\r\n"), "\(refusal)")
        #expect(now() - start < 3, "the refusal took \(now() - start) s")
        _ = try third.receive(until: "Unavailable\n")
        #expect(try third.receiveBytes(count: 1).isEmpty, "a refused connection is closed after its 503")
        let refusedWebSocket = try Client.connect(port: port, within: 5, receiveTimeout: 3)
        defer { refusedWebSocket.close() }
        #expect(try Self.upgradeHead(refusedWebSocket).hasPrefix("HTTP/1.1 503 "), "a WebSocket handshake is refused cleanly")

        // The open connections never noticed.
        try http.send(health)
        #expect(try http.receive(until: "ok\n").hasPrefix("HTTP/1.1 200 OK"))
        try Self.expectEcho(ws, "still here")

        // One closes: the worker accepts again. A newcomer that waited out the refusal check before the worker
        // read the close (1.25 s: seen once with the machine fully loaded) gets a 503; a retry must get room.
        http.close()
        var answers: [String] = []
        for _ in 0..<5 where !(answers.last?.hasPrefix("HTTP/1.1 200 OK") ?? false) {
            let later = try Client.connect(port: port, within: 5, receiveTimeout: 3)
            defer { later.close() }
            try later.send(health)
            answers.append((try? later.receive(until: "\r\n")) ?? "no answer")
        }
        #expect(answers.last?.hasPrefix("HTTP/1.1 200 OK") == true, "\(answers)")
        #expect(Glibc.kill(worker.pid, SIGTERM) == 0)
        #expect(try ws.receiveBytes(count: 4) == [0x88, 17, 0x03, 0xE9], "the open WebSocket still gets 1001 on drain")
        try ws.send(Self.frame(.close, [0x03, 0xE9]))
        #expect(try worker.wait(seconds: 10) == 0)
    }

    @Test("an idle WebSocket is pinged after the idle timeout and closed with 1001 when it stays silent; one that answers stays open")
    func idleWebSocketPingedThenClosed() throws {
        let port = try freePort()
        let worker = try Child.spawn(Child.workerPath, ["--bind", "127.0.0.1:\(port)", "--websocket-idle-timeout", "500ms"])
        defer { worker.kill() }
        let silent = try Client.connect(port: port, within: 5, receiveTimeout: 3)
        defer { silent.close() }
        let alive = try Client.connect(port: port, within: 5, receiveTimeout: 3)
        defer { alive.close() }
        #expect(try Self.upgradeHead(silent).hasPrefix("HTTP/1.1 101 "))
        #expect(try Self.upgradeHead(alive).hasPrefix("HTTP/1.1 101 "))
        let start = now()
        #expect(try silent.receiveBytes(count: 2) == [0x89, 0], "a ping after 500 ms of silence")
        #expect(try alive.receiveBytes(count: 2) == [0x89, 0])
        let pinged = now() - start
        #expect(pinged > 0.4 && pinged < 1.5, "pinged after \(pinged) s")
        try alive.send(Self.frame(.pong, []))
        try Self.expectEcho(alive, "pong sent")
        // No pong from the silent one: 1001, 500 ms after the ping.
        let close = try silent.receiveBytes(count: 4)
        #expect(close.count == 4 && close[0] == 0x88 && UInt16(close[2]) << 8 | UInt16(close[3]) == 1001, "\(close)")
        let closedAfter = now() - start
        #expect(closedAfter > 0.9 && closedAfter < 2.5, "closed after \(closedAfter) s")
        // The one that answered is open, and pinged again when silent again.
        #expect(try alive.receiveBytes(count: 2) == [0x89, 0])
        try alive.send(Self.frame(.pong, []))
        try Self.expectEcho(alive, "still open")
    }

    @Test("under the supervisor, workers at their cap leave new connections to workers with room; all full, the next gets 503")
    func capAcrossWorkers() throws {
        let port = try freePort()
        let directory = "/tmp/hg-cap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(directory, 0o700)
        defer { unlink(directory + "/control.sock"); rmdir(directory) }
        let supervisor = try Child.spawn(Child.workerPath.replacing("hyperglass-worker", with: "hyperglass"),
                                         ["start", "--bind", "127.0.0.1:\(port)", "--workers", "2", "--control-socket", directory + "/control.sock",
                                          "--environment", "HYPERGLASS_MAX_CONNECTIONS=3"],
                                         environment: ["NOTIFY_SOCKET=", "WATCHDOG_USEC="])
        defer { supervisor.kill() }
        var open: [Client] = []
        defer { for client in open { client.close() } }
        for _ in 0..<6 {
            let ws = try Client.connect(port: port, within: 10, receiveTimeout: 5)
            open.append(ws)
            let head = try Self.upgradeHead(ws)
            #expect(head.hasPrefix("HTTP/1.1 101 "), "WebSocket \(open.count) of 6 (2 workers x 3): \(head)")
        }
        let seventh = try Client.connect(port: port, within: 5, receiveTimeout: 5)
        defer { seventh.close() }
        #expect(try Self.upgradeHead(seventh).hasPrefix("HTTP/1.1 503 "))
        for (index, ws) in open.enumerated() { try Self.expectEcho(ws, "ws \(index)") }
        // Drain: every open one gets 1001.
        #expect(Glibc.kill(supervisor.pid, SIGTERM) == 0)
        for ws in open {
            let close = try ws.receiveBytes(count: 4)
            #expect(close.count == 4 && UInt16(close[2]) << 8 | UInt16(close[3]) == 1001)
            try? ws.send(Self.frame(.close, [0x03, 0xE9]))
        }
        #expect(try supervisor.wait(seconds: 15) == 0)
    }
}
