import Foundation
import Glibc
import Testing

/// Metrics, the metrics_bind listener and the event stream, driven like an operator and a Prometheus would.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ObservabilityTests {
    /// The value of one sample, by its exact name and labels, in a Prometheus text exposition.
    static func sample(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
    }

    static func which(_ program: String) -> String? {
        ["/usr/bin/", "/usr/local/bin/", "/bin/"].map { $0 + program }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The status line and body of one GET, or nil when the connection failed.
    static func get(port: Int, path: String, timeout: Int = 3) -> (status: Int, body: String)? {
        let fd = connectLoopback(port: port, timeout: timeout)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        let text = readAll(fd)
        guard let status = Int(text.dropFirst(9).prefix(3)), let split = text.range(of: "\r\n\r\n") else { return nil }
        return (status, String(text[split.upperBound...]))
    }

    static func connectLoopback(port: Int, timeout: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 { close(fd); return -1 }
        return fd
    }

    static func readAll(_ fd: Int32) -> String {
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<10_000 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test("promtool check metrics accepts a scrape of /metrics with no warning, per-worker and listener series included")
    func promtoolAccepts() throws {
        guard let promtool = Self.which("promtool") else {
            try Test.cancel("promtool is not installed (apt-get install prometheus, or make test-deps)")
        }
        let metricsPort = freePort()
        let supervisor = try SupervisorProcess(["--workers", "2", "--metrics-bind", "127.0.0.1:\(metricsPort)"])
        #expect(eventually(timeout: 10) { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":2") }, "\(supervisor.log)")
        let scrape = try #require(Self.get(port: metricsPort, path: "/metrics"), "\(supervisor.log)")
        #expect(scrape.status == 200)
        let text = scrape.body
        #expect(Self.sample(text, "hyperglass_workers{state=\"ready\"}") == 2)
        #expect(Self.sample(text, "hyperglass_listener_accept_queue_limit{listener=\"127.0.0.1:\(supervisor.port)\"}") ?? 0 > 0)
        #expect(text.split(separator: "\n").count { $0.hasPrefix("hyperglass_worker_resident_memory_bytes{worker=") } == 2)
        #expect(Self.sample(text, "process_resident_memory_bytes") ?? 0 > 1_000_000)
        let file = supervisor.directory + "/scrape.prom"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let check = runProgram("/bin/sh", ["-c", "'\(promtool)' check metrics < '\(file)'"])
        #expect(check.status == 0, "promtool: \(check.out)\(check.err)")
        #expect(check.out.isEmpty && check.err.isEmpty, "promtool warned: \(check.out)\(check.err)")
        // The control request gives the same families.
        let viaControl = supervisor.ctl(["metrics"])
        #expect(viaControl.status == 0)
        #expect(viaControl.out.contains("# TYPE hyperglass_worker_restarts_total counter"))
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("a SIGKILLed worker moves the crash failure and restart counters, and the others stay at zero")
    func killMovesCounters() throws {
        // Ready and past min_ready (none here), so the kill is a crash rather than a failed start.
        let supervisor = try SupervisorProcess(["--workers", "2", "--min-ready", "0"])
        #expect(eventually(timeout: 10) { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":2") }, "\(supervisor.log)")
        let before = supervisor.ctl(["metrics"]).out
        #expect(Self.sample(before, "hyperglass_worker_restarts_total{reason=\"crash\"}") == 0)
        #expect(Self.sample(before, "hyperglass_worker_failures_total{reason=\"crash\"}") == 0)
        let victim = supervisor.liveWorkers[0]
        kill(victim, SIGKILL)
        var after = ""
        #expect(eventually(timeout: 5) {
            after = supervisor.ctl(["metrics"]).out
            return Self.sample(after, "hyperglass_worker_restarts_total{reason=\"crash\"}") == 1
        }, "\(after)\n\(supervisor.log)")
        #expect(Self.sample(after, "hyperglass_worker_failures_total{reason=\"crash\"}") == 1)
        #expect(Self.sample(after, "hyperglass_worker_restarts_total{reason=\"watchdog\"}") == 0)
        #expect(eventually(timeout: 5) { Self.sample(supervisor.ctl(["metrics"]).out, "hyperglass_worker_spawns_total") == 3 })
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("hyperglassctl events prints a killed worker's exit and restart as JSON lines with worker, pid and reason")
    func eventsFollow() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--min-ready", "0"])
        #expect(eventually(timeout: 10) { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":2") }, "\(supervisor.log)")
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: Paths.products + "/hyperglassctl")
        follower.arguments = ["--socket", supervisor.controlSocket, "events"]
        let output = supervisor.directory + "/events.jsonl"
        FileManager.default.createFile(atPath: output, contents: nil)
        follower.standardOutput = FileHandle(forWritingAtPath: output)
        try follower.run()
        defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL); follower.waitUntilExit() } }
        // The subscription is in place once the supervisor holds a second control connection... give it a moment.
        #expect(eventually(timeout: 3) { supervisor.openFDs > 0 })
        usleep(300_000)
        let victim = supervisor.liveWorkers[1]
        kill(victim, SIGKILL)
        var lines: [[String: Any]] = []
        #expect(eventually(timeout: 5) {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return lines.contains { $0["event"] as? String == "spawned" }
        }, "\(lines)\n\(supervisor.log)")
        let exited = lines.first { $0["event"] as? String == "exited" }
        #expect(exited?["pid"] as? Int == Int(victim))
        #expect(exited?["reason"] as? String == "crash")
        #expect(exited?["level"] as? String == "warning")
        let slot = exited?["worker"] as? Int
        #expect(lines.contains { $0["event"] as? String == "restart" && $0["worker"] as? Int == slot && $0["reason"] as? String == "crash" })
        // The supervisor ends the stream when it stops; the follower then exits 0.
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(eventually(timeout: 5) { !follower.isRunning })
        #expect(follower.terminationStatus == 0)
    }

    @Test("/readyz and hyperglassctl health give the same verdict for every share, ready or not; a bad share is a 400 or a usage error")
    func readyzAndHealthAgree() throws {
        let metricsPort = freePort()
        // Workers that take 4 s to send READY=1: first none of them is ready, then both are.
        let supervisor = try SupervisorProcess(["--workers", "2", "--readiness", "notify", "--metrics-bind", "127.0.0.1:\(metricsPort)"],
                                               worker: ["--notify", "--delay", "4"])
        #expect(eventually(timeout: 3) { Self.get(port: metricsPort, path: "/livez")?.status == 200 }, "\(supervisor.log)")
        let shares = ["0", "0%", "0.25", "0.5", "50%", "0.75", "1", "100%"]
        func verdicts() -> [String: (readyz: Int?, health: Int32)] {
            var result: [String: (Int?, Int32)] = [:]
            for share in shares {
                result[share] = (Self.get(port: metricsPort, path: "/readyz?ready_share=\(share)")?.status,
                                 supervisor.ctl(["health", "--ready-share=\(share)"]).status)
            }
            return result
        }
        for (state, expectedReady) in [("none ready", ["0", "0%"]), ("all ready", shares)] {
            if state == "all ready" {
                #expect(eventually(timeout: 10) { supervisor.ctl(["health", "--ready-share", "1"]).status == 0 }, "\(supervisor.log)")
            }
            let seen = verdicts()
            for share in shares {
                let ready = expectedReady.contains(share)
                #expect(seen[share]?.readyz == (ready ? 200 : 503), "\(state), share \(share): /readyz \(String(describing: seen[share]?.readyz))")
                #expect(seen[share]?.health == (ready ? 0 : 1), "\(state), share \(share): health exit \(String(describing: seen[share]?.health))")
            }
        }
        for bad in ["75", "abc", "150%", "-1"] {
            let answer = Self.get(port: metricsPort, path: "/readyz?ready_share=\(bad)")
            #expect(answer?.status == 400 && answer?.body.contains("is not a share from 0 to 1") == true, "\(bad): \(String(describing: answer))")
            let health = supervisor.ctl(["health", "--ready-share=\(bad)"])
            #expect(health.status == 2 && health.err.contains("is not a share from 0 to 1"), "\(bad): \(health)")
        }
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("the metrics listener is bounded: past 16 connections a 503, idle ones closed after 5 s, then it serves again")
    func listenerBounded() throws {
        let metricsPort = freePort()
        let supervisor = try SupervisorProcess(["--workers", "1", "--metrics-bind", "127.0.0.1:\(metricsPort)"])
        #expect(eventually(timeout: 10) { Self.get(port: metricsPort, path: "/readyz")?.status == 200 }, "\(supervisor.log)")
        #expect(Self.get(port: metricsPort, path: "/livez")?.status == 200)
        #expect(Self.get(port: metricsPort, path: "/nope")?.status == 404)
        var idle: [Int32] = []
        defer { idle.forEach { close($0) } }
        for _ in 0..<16 { idle.append(Self.connectLoopback(port: metricsPort, timeout: 8)) }
        #expect(idle.allSatisfy { $0 >= 0 })
        // Let the loop accept them all before the next one arrives.
        #expect(eventually(timeout: 3) { supervisor.openFDs >= 16 })
        let refused = Self.get(port: metricsPort, path: "/metrics")
        #expect(refused?.status == 503)
        // A trickling client gets no more time than a silent one: the deadline runs from accept.
        let trickle = idle[0]
        _ = send(trickle, "GET /metr", 9, Int32(MSG_NOSIGNAL))
        let start = Date()
        let closed = Self.readAll(trickle)
        #expect(closed.isEmpty)
        #expect(Date().timeIntervalSince(start) < 7)
        #expect(eventually(timeout: 3) { Self.get(port: metricsPort, path: "/metrics")?.status == 200 })
        // An oversized request head is answered 431 and closed.
        let big = Self.connectLoopback(port: metricsPort, timeout: 3)
        let head = Array(("GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 9000)).utf8)
        _ = send(big, head, head.count, Int32(MSG_NOSIGNAL))
        #expect(Self.readAll(big).hasPrefix("HTTP/1.1 431"))
        close(big)
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(!supervisor.log.contains("error"), "\(supervisor.log)")
    }

    @Test("a real Prometheus server scrapes metrics_bind and answers a query for the pool's ready workers", .timeLimit(.minutes(2)))
    func prometheusScrapes() throws {
        guard let prometheus = Self.which("prometheus") else {
            try Test.cancel("the prometheus server is not installed (apt-get install prometheus, or make test-deps)")
        }
        let metricsPort = freePort()
        let supervisor = try SupervisorProcess(["--workers", "3", "--metrics-bind", "127.0.0.1:\(metricsPort)"])
        #expect(eventually(timeout: 10) { supervisor.liveWorkers.count == 3 })
        let webPort = freePort()
        let config = supervisor.directory + "/prometheus.yml"
        try """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: hyperglass
                static_configs:
                  - targets: ['127.0.0.1:\(metricsPort)']
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: prometheus)
        server.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(supervisor.directory)/tsdb",
                            "--web.listen-address=127.0.0.1:\(webPort)", "--log.level=warn"]
        let serverLog = supervisor.directory + "/prometheus.log"
        FileManager.default.createFile(atPath: serverLog, contents: nil)
        server.standardOutput = FileHandle(forWritingAtPath: serverLog)
        server.standardError = FileHandle(forWritingAtPath: serverLog)
        try server.run()
        defer {
            if server.isRunning { kill(server.processIdentifier, SIGKILL) }
            server.waitUntilExit()
        }
        let query = "/api/v1/query?query=hyperglass_workers%7Bstate%3D%22ready%22%7D"
        var answer = ""
        // Prometheus needs a few seconds to start, then a scrape or two (every second).
        let answered = eventually(timeout: 60) {
            answer = Self.get(port: webPort, path: query)?.body ?? ""
            return answer.contains("\"value\":[") && answer.contains(",\"3\"]")
        }
        #expect(answered, "query answer: \(answer)\nprometheus: \((try? String(contentsOfFile: serverLog, encoding: .utf8)) ?? "")")
        #expect(answer.contains("\"job\":\"hyperglass\""))
        // And the scrape itself is healthy in Prometheus's eyes.
        let up = Self.get(port: webPort, path: "/api/v1/query?query=up%7Bjob%3D%22hyperglass%22%7D")?.body ?? ""
        #expect(up.contains(",\"1\"]"), "up: \(up)")
        kill(server.processIdentifier, SIGTERM)
        #expect(eventually(timeout: 10) { !server.isRunning })
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("an events follower that stops reading is dropped once 64 KiB wait for it (beyond what the kernel holds); the supervisor carries on")
    func slowFollowerDropped() throws {
        // The bundled worker (no command): it starts and drains in milliseconds, so scaling makes events fast.
        let supervisor = try SupervisorProcess(["--workers", "1"], worker: nil)
        #expect(eventually(timeout: 10) { supervisor.ctl(["ping"]).status == 0 }, "\(supervisor.log)")
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in supervisor.controlSocket.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(connected == 0)
        let request = Array("{\"v\":1,\"cmd\":\"events\"}\n".utf8)
        #expect(send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count)
        // Never read: scale up and down until the supervisor gives up on us (bounded: 60 rounds).
        var rounds = 0
        while rounds < 60, !supervisor.log.contains("dropped a 'hyperglassctl events' follower") {
            _ = supervisor.ctl(["workers", "48", "--wait"])
            _ = supervisor.ctl(["workers", "1", "--wait"])
            rounds += 1
        }
        #expect(supervisor.log.contains("dropped a 'hyperglassctl events' follower: it read too slowly (64 KiB unread)"),
                "not dropped after \(rounds) rounds")
        // What the kernel had buffered is still readable, then the connection ends: no more than 64 KiB + the kernel buffers.
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        var ended = false
        for _ in 0..<10_000 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { ended = true; break }
            if n < 0 { break }
            total += n
        }
        #expect(ended, "the connection was not closed")
        #expect(total < 2 << 20, "read \(total) bytes")
        #expect(supervisor.ctl(["ping"]).status == 0)
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 20) == 0)
    }

    @Test("status --watch redraws the table at its interval until stopped; --watch with another command is a usage error")
    func statusWatch() throws {
        let supervisor = try SupervisorProcess(["--workers", "2"])
        #expect(eventually(timeout: 10) { supervisor.liveWorkers.count == 2 })
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: Paths.products + "/hyperglassctl")
        watcher.arguments = ["--socket", supervisor.controlSocket, "status", "--watch", "--interval", "0.2"]
        let output = supervisor.directory + "/watch.txt"
        FileManager.default.createFile(atPath: output, contents: nil)
        watcher.standardOutput = FileHandle(forWritingAtPath: output)
        try watcher.run()
        defer { if watcher.isRunning { kill(watcher.processIdentifier, SIGKILL); watcher.waitUntilExit() } }
        var text = ""
        #expect(eventually(timeout: 5) {
            text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "supervisor  pid").count - 1 >= 3
        }, "\(text)")
        #expect(text.contains("2/2 workers ready"))
        kill(watcher.processIdentifier, SIGTERM)
        #expect(eventually(timeout: 3) { !watcher.isRunning })
        let misuse = supervisor.ctl(["ping", "--watch"])
        #expect(misuse.status == 2)
        #expect(misuse.err.contains("--watch goes with 'status'"))
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }
}
