import Foundation
import Glibc
import Testing

/// Rolling reload and restart through the real binaries, under real HTTP load.
@Suite("Reload and restart", .serialized, .timeLimit(.minutes(2)))
struct ReloadTests {
    /// The load fixture, running until `finish()` closes its stdin.
    final class Load {
        let process = Process()
        private let input = Pipe(), output = Pipe()

        init(port: Int, rate: Int = 300, keepalive: Int = 4) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Paths.fixtures + "/load_client.py", "--port", "\(port)", "--rate", "\(rate)",
                                 "--keepalive", "\(keepalive)", "--seconds", "60"]
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            // The first line says the threads are running.
            _ = output.fileHandleForReading.availableData
        }

        /// Stops the load; its counts.
        func finish() -> [String: Any] {
            try? input.fileHandleForWriting.close()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            if !eventually(timeout: 15, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            return (try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]) ?? ["unreadable": last]
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
    }

    /// Samples the supervisor's live workers every few milliseconds on a thread, keeping the lowest count.
    /// Each sample is one read of the kernel's children list, a snapshot: scanning /proc pid by pid
    /// could miss a worker started after the scan began while its predecessor exits during the scan.
    final class CountWatcher: @unchecked Sendable {
        private let lock = NSLock()
        private var lowest = Int.max
        private var running = true
        private let thread: Thread

        init(supervisor: Int32) {
            let box = Box()
            thread = Thread {
                while box.watcher?.isRunning ?? false {
                    box.watcher?.record(ProcFS.childrenSnapshot(of: supervisor).count)
                    usleep(3000)
                }
            }
            box.watcher = self
            thread.start()
        }
        private final class Box: @unchecked Sendable { weak var watcher: CountWatcher? }
        private var isRunning: Bool { lock.withLock { running } }
        private func record(_ count: Int) { lock.withLock { lowest = min(lowest, count) } }
        func stop() -> Int {
            lock.withLock { running = false }
            usleep(10000)
            return lock.withLock { lowest }
        }
    }

    static func configFile(in directory: String, workers: Int, extra: String = "") -> String {
        let path = directory + "/supervisor.conf"
        let text = "[supervisor]\nworkers = \(workers)\n\n[worker]\nreadiness = notify\n\(extra)"
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @Test("reload --wait under load replaces every worker with 0 failed requests and never fewer than N workers")
    func reloadUnderLoad() throws {
        let directory = Paths.temporaryDirectory()
        let config = Self.configFile(in: directory, workers: 4)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(eventually { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":4") }, "\(supervisor.log)")
        let before = Set(supervisor.liveWorkers)
        #expect(before.count == 4)
        let load = try Load(port: supervisor.port)
        usleep(500_000)
        let watcher = CountWatcher(supervisor: supervisor.pid)
        let started = Date()
        let reload = supervisor.ctl(["reload", "--wait"])
        let elapsed = Date().timeIntervalSince(started)
        usleep(500_000)
        let lowest = watcher.stop()
        let counts = load.finish()
        // Piped, `--wait` writes a line per step of the roll, then the outcome.
        #expect(reload.status == 0 && reload.out.split(separator: "\n").last?.hasPrefix("reload complete: 4 workers replaced") == true, "\(reload) \(supervisor.log)")
        #expect(lowest >= 4, "the pool fell to \(lowest) live workers during the roll")
        #expect(eventually { let now = Set(supervisor.liveWorkers); return now.count == 4 && now.isDisjoint(with: before) },
                "workers before \(before), now \(supervisor.liveWorkers)")
        #expect(counts["new_failed"] as? Int == 0, "\(counts)")
        #expect(counts["keepalive_resets"] as? Int == 0, "\(counts)")
        #expect((counts["new_ok"] as? Int ?? 0) > 50, "\(counts)")
        #expect((counts["keepalive_ok"] as? Int ?? 0) > 50, "\(counts)")
        print("reload of 4 workers took \(String(format: "%.2f", elapsed)) s under load: \(counts)")
    }

    @Test("a reload to a worker that exits at once stops at the first slot, keeps the old workers serving, and exits 1")
    func reloadToBrokenCommandRollsBack() throws {
        let directory = Paths.temporaryDirectory()
        let recorder = try NotifyRecorder(directory: directory)
        let config = Self.configFile(in: directory, workers: 3)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil,
                                               environment: ["NOTIFY_SOCKET": recorder.socketPath], directory: directory)
        #expect(eventually { recorder.messages.contains("READY=1") }, "\(supervisor.log)")
        let before = Set(supervisor.liveWorkers)
        _ = Self.configFile(in: directory, workers: 3, extra: "command = \(Paths.testWorker) --exit 3\n")
        let load = try Load(port: supervisor.port)
        usleep(300_000)
        let reload = supervisor.ctl(["reload", "--wait"])
        usleep(300_000)
        let counts = load.finish()
        #expect(reload.status == 1, "\(reload)")
        #expect(reload.err.contains("reload failed at worker 0 (1/3): exit status 3 before ready; kept the previous version"), "\(reload)")
        #expect(Set(supervisor.liveWorkers) == before)
        #expect(counts["new_failed"] as? Int == 0 && counts["keepalive_resets"] as? Int == 0, "\(counts)")
        #expect(recorder.messages.contains { $0.hasPrefix("RELOADING=1|MONOTONIC_USEC=") }, "\(recorder.messages)")
        #expect(recorder.messages.contains { $0.hasPrefix("STATUS=") && $0.contains("reload failed at worker 0") }, "\(recorder.messages)")
        #expect(recorder.messages.filter { $0 == "READY=1" }.count == 2, "READY=1 after start and after the failed reload: \(recorder.messages)")
    }

    @Test("a reload with an invalid configuration restarts nothing and names the line")
    func reloadWithInvalidConfig() throws {
        let directory = Paths.temporaryDirectory()
        let config = Self.configFile(in: directory, workers: 2)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(eventually { supervisor.liveWorkers.count == 2 && supervisor.ctl(["ping"]).status == 0 })
        let before = Set(supervisor.liveWorkers)
        _ = Self.configFile(in: directory, workers: 2, extra: "ready_timeout = soon\n")
        let reload = supervisor.ctl(["reload", "--wait"])
        #expect(reload.status == 1 && reload.err.contains("supervisor.conf:6") && reload.err.contains("ready_timeout"), "\(reload)")
        // SIGHUP takes the same path and is refused the same way.
        supervisor.signal(SIGHUP)
        #expect(eventually { supervisor.log.components(separatedBy: "reload refused, nothing changed").count == 3 }, "\(supervisor.log)")
        #expect(Set(supervisor.liveWorkers) == before)
        #expect(supervisor.ctl(["status"]).out.contains("reload refused, nothing changed"))
    }

    @Test("SIGHUP rolls the workers; a count set at run time survives a reload that leaves the configured count alone")
    func hangupKeepsRuntimeCount() throws {
        let directory = Paths.temporaryDirectory()
        let config = Self.configFile(in: directory, workers: 2)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(eventually { supervisor.liveWorkers.count == 2 && supervisor.ctl(["ping"]).status == 0 })
        #expect(supervisor.ctl(["workers", "3", "--wait"]).status == 0)
        let before = Set(supervisor.liveWorkers)
        supervisor.signal(SIGHUP)
        // Each successor settles for min_ready (3 s) before its predecessor drains.
        #expect(eventually(timeout: 20) { supervisor.log.contains("reload complete: 3 workers replaced") }, "\(supervisor.log)")
        #expect(eventually { let now = Set(supervisor.liveWorkers); return now.count == 3 && now.isDisjoint(with: before) })
        // Changing the configured count applies it; a setting only a restart applies is named.
        let text = "[supervisor]\nworkers = 1\ndebug = true\n\n[worker]\nreadiness = notify\n"
        FileManager.default.createFile(atPath: config, contents: Data(text.utf8))
        let reload = supervisor.ctl(["reload", "--wait"])
        #expect(reload.status == 0 && reload.err.contains("note: debug changed, but only a restart applies that"), "\(reload)")
        #expect(eventually { supervisor.liveWorkers.count == 1 })
        #expect(supervisor.ctl(["workers"]).out == "1\n")
    }

    @Test("restart ID and restart all replace workers gracefully; a second roll while one runs is refused")
    func restartCommands() throws {
        let directory = Paths.temporaryDirectory()
        let supervisor = try SupervisorProcess(["--workers", "3", "--readiness", "notify"], worker: ["--notify", "--delay", "0.3"], directory: directory)
        #expect(eventually { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":3") }, "\(supervisor.log)")
        let original = supervisor.liveWorkers
        let one = supervisor.ctl(["restart", "1", "--wait"])
        #expect(one.status == 0 && one.out.split(separator: "\n").last?.hasPrefix("restart complete: 1 worker replaced") == true, "\(one)")
        #expect(one.out.hasPrefix("rolling: 0/1 new, 1 starting, 0 settling, 0 failed\n"), "\(one)")
        #expect(eventually { supervisor.liveWorkers.count == 3 }, "the replaced worker drains and exits")
        let afterOne = Set(supervisor.liveWorkers)
        #expect(afterOne.intersection(original).count == 2)
        #expect(eventually { supervisor.records.contains { $0.hasPrefix("\(original[1]) signal 15") } }, "the replaced worker got SIGTERM: \(supervisor.records)")

        let all = supervisor.ctl(["restart", "all"])
        #expect(all.status == 0 && all.out == "restart started: 3 workers to replace\n", "\(all)")
        let busy = supervisor.ctl(["reload"])
        #expect(busy.status == 1 && busy.err.contains("a restart is in progress"), "\(busy)")
        // Each successor settles for min_ready (3 s) before its predecessor drains.
        #expect(eventually(timeout: 20) { supervisor.log.contains("restart complete: 3 workers replaced") }, "\(supervisor.log)")
        #expect(eventually { Set(supervisor.liveWorkers).isDisjoint(with: afterOne) && supervisor.liveWorkers.count == 3 })
        #expect(supervisor.ctl(["restart", "7"]).err.contains("there is no worker 7"))
        #expect(supervisor.ctl(["restart", "x"]).status == 2)
    }
}
