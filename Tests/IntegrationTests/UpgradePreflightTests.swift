import Foundation
import Glibc
import Testing

/// The upgrade's preflight (`PATH upgrade-check`) runs while the supervisor goes on serving: real
/// supervisor, real workers, a real "new binary" (a script that is slow to answer, or never does).
@Suite("Upgrade preflight never blocks the loop", .serialized, .timeLimit(.minutes(2)))
struct UpgradePreflightTests {
    /// A supervisor of `workers` bundled workers, ready.
    private func start(workers: Int = 3, environment: [String: String] = [:]) throws -> SupervisorProcess {
        let directory = Paths.temporaryDirectory()
        let config = directory + "/supervisor.conf"
        let text = "[supervisor]\nworkers = \(workers)\n\n[worker]\ncommand = \(Paths.products)/hyperglass-worker\nmin_ready = 0s\n"
        FileManager.default.createFile(atPath: config, contents: Data(text.utf8))
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, environment: environment, directory: directory)
        #expect(eventually(timeout: 10) { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":\(workers)") }, "\(supervisor.log)")
        return supervisor
    }

    /// A "new binary": its `upgrade-check` runs `check` first (and writes its pid to check.pid), anything else execs the real one.
    private func newBinary(_ supervisor: SupervisorProcess, check: String) -> String {
        let path = supervisor.directory + "/new-hyperglass"
        let body = """
            #!/bin/sh
            if [ "$1" = upgrade-check ]; then
              echo $$ > \(supervisor.directory)/check.pid
              \(check)
            fi
            exec \(Paths.hyperglass) "$@"
            """
        FileManager.default.createFile(atPath: path, contents: Data((body + "\n").utf8), attributes: [.posixPermissions: 0o755])
        return path
    }

    /// The check's pid, once it has written it.
    private func checkPid(_ supervisor: SupervisorProcess) -> Int32? {
        (try? String(contentsOfFile: supervisor.directory + "/check.pid", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The supervisor's children that are bundled workers (the check is a child too, while it runs).
    private func workers(_ supervisor: SupervisorProcess) -> Set<Int32> {
        Set(supervisor.liveWorkers.filter {
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/exe")) ?? "").hasSuffix("/hyperglass-worker")
        })
    }

    /// One `ping` over a raw connection (no client program to start): its reply and how long it took.
    private func ping(_ supervisor: SupervisorProcess) -> (reply: String, seconds: Double) {
        let started = Date()
        let fd = unixConnect(supervisor.controlSocket)
        guard fd >= 0 else { return ("cannot connect", Date().timeIntervalSince(started)) }
        defer { close(fd) }
        var line = Array("{\"v\":1,\"cmd\":\"ping\"}\n".utf8)
        _ = send(fd, &line, line.count, Int32(MSG_NOSIGNAL))
        let reply = readLine(fd)
        return (reply, Date().timeIntervalSince(started))
    }

    /// `hyperglassctl ARGS` started now, finished later (`finish`).
    final class Request: @unchecked Sendable {
        let process = Process()
        private let out = Pipe(), err = Pipe()
        let started = Date()

        init(_ supervisor: SupervisorProcess, _ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: Paths.products + "/hyperglassctl")
            process.arguments = ["--socket", supervisor.controlSocket] + arguments
            process.standardOutput = out
            process.standardError = err
            try process.run()
        }

        var isRunning: Bool { process.isRunning }

        /// Waits (at most `timeout`) for it to end: status, output, error and seconds since it started.
        func finish(timeout: Double = 20) -> (status: Int32, out: String, err: String, seconds: Double) {
            if !eventually(timeout: timeout, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let seconds = Date().timeIntervalSince(started)
            return (process.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                    String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), seconds)
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
    }

    @Test("while a check takes 3 s, pings answer within 200 ms, systemd's watchdog is pinged and a SIGKILLed worker is replaced; then the upgrade completes")
    func loopServesDuringTheCheck() throws {
        // A systemd watchdog of 1 s: WATCHDOG=1 every 0.5 s, which a loop blocked by the check would miss.
        let recorder = try NotifyRecorder(directory: Paths.temporaryDirectory())
        let supervisor = try start(environment: ["NOTIFY_SOCKET": recorder.socketPath, "WATCHDOG_USEC": "1000000"])
        func watchdogPings() -> Int { recorder.messages.filter { $0.split(separator: "|").contains("WATCHDOG=1") }.count }
        let before = workers(supervisor)
        #expect(before.count == 3)
        let slow = newBinary(supervisor, check: "sleep 3")
        let upgrade = try Request(supervisor, ["upgrade", "--wait", slow])
        #expect(eventually(timeout: 2) { checkPid(supervisor) != nil }, "the check never started: \(supervisor.log)")
        let pingsAtStart = watchdogPings()
        let victim = try #require(before.sorted().first)
        kill(victim, SIGKILL)
        var slowest = 0.0, pings = 0, replacedWhileChecking = false
        // Bounded: 2.5 s of the check's 3 s, a ping every 50 ms.
        let until = Date().addingTimeInterval(2.5)
        while Date() < until, upgrade.isRunning {
            let (reply, seconds) = ping(supervisor)
            #expect(reply.contains("\"pong\":true"), "\(reply)")
            slowest = max(slowest, seconds)
            pings += 1
            let now = workers(supervisor)
            if now.count == 3, !now.contains(victim), upgrade.isRunning { replacedWhileChecking = true }
            usleep(50_000)
        }
        #expect(upgrade.isRunning, "the upgrade answered before its check could have: \(upgrade.finish())")
        let watchdogDuringCheck = watchdogPings() - pingsAtStart
        #expect(watchdogDuringCheck >= 3, "\(watchdogDuringCheck) WATCHDOG=1 in 2.5 s of the check: \(recorder.messages)")
        #expect(pings >= 10 && slowest < 0.2, "\(pings) pings during the check, the slowest \(Int(slowest * 1000)) ms")
        #expect(replacedWhileChecking, "worker \(victim) was not replaced while the check ran: \(supervisor.log)")
        let result = upgrade.finish()
        #expect(result.status == 0 && result.out.hasPrefix("upgraded from 0.1.0 to 0.1.0 in "), "\(result) \(supervisor.log)")
        #expect(result.seconds >= 2.5, "the upgrade took \(result.seconds) s, less than its check")
        #expect(supervisor.process.isRunning)
        #expect(before.subtracting([victim]).isSubset(of: workers(supervisor)), "the other workers were kept")
        print("a 3 s check: \(pings) pings, the slowest \(Int(slowest * 1000)) ms, \(watchdogDuringCheck) WATCHDOG=1 to systemd; upgrade answered after \(String(format: "%.2f", result.seconds)) s")
    }

    @Test("a check that never answers is refused at the 5 s timeout, killed and reaped with what it started; pings and /readyz answered meanwhile")
    func hungCheckIsRefusedAtTheTimeout() throws {
        let port = freePort()
        let supervisor = try start(workers: 2, environment: ["HYPERGLASS_METRICS_BIND": "127.0.0.1:\(port)"])
        #expect(eventually(timeout: 5) { ObservabilityTests.get(port: port, path: "/readyz")?.status == 200 }, "\(supervisor.log)")
        let before = workers(supervisor)
        let hung = newBinary(supervisor, check: "sleep 61 & echo $! > \(supervisor.directory)/grandchild.pid; exec sleep 60")
        let upgrade = try Request(supervisor, ["upgrade", "--wait", hung])
        #expect(eventually(timeout: 2) { checkPid(supervisor) != nil })
        var slowest = 0.0, pings = 0, readyz = 0
        let until = Date().addingTimeInterval(4)
        while Date() < until, upgrade.isRunning {
            let (reply, seconds) = ping(supervisor)
            #expect(reply.contains("\"pong\":true"), "\(reply)")
            slowest = max(slowest, seconds)
            pings += 1
            if ObservabilityTests.get(port: port, path: "/readyz", timeout: 1)?.status == 200 { readyz += 1 }
            usleep(50_000)
        }
        #expect(pings >= 20 && slowest < 0.2, "\(pings) pings during the check, the slowest \(Int(slowest * 1000)) ms")
        #expect(readyz == pings, "/readyz answered 200 \(readyz) times of \(pings)")
        let result = upgrade.finish()
        #expect(result.status == 1 && result.err.contains("upgrade-check did not answer within 5s; nothing changed"), "\(result)")
        #expect(result.seconds >= 4.5 && result.seconds < 8, "refused after \(result.seconds) s")
        let check = try #require(checkPid(supervisor))
        let grandchild = try #require((try? String(contentsOfFile: supervisor.directory + "/grandchild.pid", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        // Gone from /proc altogether: killed, and reaped (a zombie would still be listed).
        #expect(eventually(timeout: 3) { ProcFS.stat(check) == nil && ProcFS.stat(grandchild) == nil },
                "check \(check): \(String(describing: ProcFS.stat(check))), grandchild \(grandchild): \(String(describing: ProcFS.stat(grandchild)))")
        #expect(workers(supervisor) == before)
        #expect(supervisor.ctl(["status", "--json"]).out.contains("\"ready\":2"))
    }

    @Test("while a check runs, a second upgrade, a reload and a new count are refused at once: an upgrade is being prepared")
    func otherRequestsRefusedWhilePreparing() throws {
        let supervisor = try start(workers: 2)
        let slow = newBinary(supervisor, check: "sleep 3")
        let upgrade = try Request(supervisor, ["upgrade", "--wait", slow])
        #expect(eventually(timeout: 2) { checkPid(supervisor) != nil })
        for arguments in [["upgrade", "--wait", Paths.hyperglass], ["reload"], ["workers", "3"]] {
            let started = Date()
            let refused = supervisor.ctl(arguments)
            let took = Date().timeIntervalSince(started)
            #expect(refused.status == 1 && refused.err.contains("an upgrade to \(slow) is being prepared"), "\(arguments): \(refused)")
            #expect(took < 1.5, "\(arguments) answered after \(took) s")
        }
        #expect(upgrade.isRunning)
        let result = upgrade.finish()
        #expect(result.status == 0 && result.out.hasPrefix("upgraded from"), "\(result) \(supervisor.log)")
        #expect(supervisor.ctl(["status", "--json"]).out.contains("\"desired\":2"))
    }

    @Test("a client that leaves before the check's answer: the refusal is dropped, never sent to a newcomer on its fd")
    func answerForAClientThatLeft() throws {
        let supervisor = try start(workers: 2)
        let refusing = newBinary(supervisor, check: "sleep 1; echo 'not today'; exit 1")
        let asker = unixConnect(supervisor.controlSocket)
        #expect(asker >= 0)
        var request = Array("{\"v\":1,\"cmd\":\"upgrade\",\"path\":\"\(refusing)\"}\n".utf8)
        _ = send(asker, &request, request.count, Int32(MSG_NOSIGNAL))
        #expect(eventually(timeout: 2) { checkPid(supervisor) != nil })
        close(asker)
        usleep(200_000)
        // The supervisor's lowest free fd was the asker's: one of these connections has its number now.
        let newcomers = (0..<3).map { _ in unixConnect(supervisor.controlSocket) }
        defer { for fd in newcomers where fd >= 0 { close(fd) } }
        #expect(eventually(timeout: 5) { supervisor.log.contains("refused to take over") }, "\(supervisor.log)")
        usleep(100_000)
        for fd in newcomers {
            var line = Array("{\"v\":1,\"cmd\":\"ping\"}\n".utf8)
            _ = send(fd, &line, line.count, Int32(MSG_NOSIGNAL))
            let reply = readLine(fd)
            #expect(reply == "{\"ok\":true,\"pong\":true}", "a newcomer read \(reply)")
        }
    }

    @Test("a SIGTERM during the check wins: the upgrade is abandoned with a reply saying so, the check ended, the pool drained, exit 0")
    func stopAbandonsTheUpgrade() throws {
        let supervisor = try start(workers: 2)
        let before = workers(supervisor)
        let slow = newBinary(supervisor, check: "exec sleep 3")
        let upgrade = try Request(supervisor, ["upgrade", "--wait", slow])
        #expect(eventually(timeout: 2) { checkPid(supervisor) != nil })
        usleep(200_000)
        supervisor.signal(SIGTERM)
        let result = upgrade.finish()
        #expect(result.status == 1 && result.err.contains("upgrade abandoned: the supervisor is stopping; nothing changed"), "\(result)")
        #expect(result.seconds < 2.5, "answered after \(result.seconds) s, not at the stop")
        #expect(supervisor.waitForExit(timeout: 10) == 0, "\(supervisor.log)")
        #expect(!supervisor.log.contains("upgraded from"), "\(supervisor.log)")
        let check = try #require(checkPid(supervisor))
        #expect(eventually(timeout: 3) { ProcFS.stat(check) == nil }, "the check \(check) outlived the stop")
        #expect(before.allSatisfy { !ProcFS.isAlive($0) })
    }
}
