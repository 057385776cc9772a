import Foundation
import Glibc
import Testing

/// `prestart`: one command run to completion before the first workers start (the real binary, real
/// processes, systemd's side of the notify protocol played by the recorder).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PrestartTests {
    @Test("prestart runs to completion before the sockets and workers, with its output in the log, STATUS= and EXTEND_TIMEOUT_USEC= meanwhile, and without systemd's variables")
    func prestartRunsFirst() throws {
        let directory = Paths.temporaryDirectory()
        let recorder = try NotifyRecorder(directory: directory)
        let marker = directory + "/prestart.env"
        let script = "echo prestart-output; env > \(marker); sleep 0.5; echo prestart-done"
        let supervisor = try SupervisorProcess(["--workers", "2", "--prestart", "sh -c '\(script)'", "--environment", "FROM_CONFIG=1"],
                                               environment: ["NOTIFY_SOCKET": recorder.socketPath], directory: directory)
        #expect(eventually(timeout: 10) { recorder.messages.contains("READY=1") }, "\(supervisor.log)")
        let log = supervisor.log
        let done = log.range(of: "prestart-done"), listening = log.range(of: "listening on"), started = log.range(of: "worker 0 started")
        #expect(done != nil && listening != nil && started != nil, "\(log)")
        if let done, let listening, let started {
            #expect(done.upperBound <= listening.lowerBound && listening.upperBound <= started.lowerBound,
                    "the prestart's output, then the sockets, then the workers:\n\(log)")
        }
        #expect(log.contains("prestart-output") && log.contains("succeeded in"), "\(log)")
        let messages = recorder.messages
        let running = messages.firstIndex { $0.hasPrefix("STATUS=prestart: running /usr/bin/sh -c ") && $0.hasSuffix("|EXTEND_TIMEOUT_USEC=30000000") }
        let ready = messages.firstIndex(of: "READY=1")
        #expect(running != nil && ready != nil && running! < ready!, "\(messages)")
        let environment = (try? String(contentsOfFile: marker, encoding: .utf8)) ?? ""
        #expect(environment.contains("FROM_CONFIG=1\n"), "the configured environment applies to prestart:\n\(environment)")
        #expect(!environment.contains("NOTIFY_SOCKET=") && !environment.contains("LISTEN_FDS="), "systemd's variables are ours:\n\(environment)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(supervisor.noWorkerLeft)
    }

    @Test("SIGTTIN and SIGHUP during prestart are ignored with a line, not acted on once the workers have started")
    func requestSignalsDuringPrestartIgnored() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--prestart", "sleep 1"])
        #expect(eventually { supervisor.log.contains("prestart: running") }, "\(supervisor.log)")
        supervisor.signal(SIGTTIN)
        supervisor.signal(SIGHUP)
        #expect(eventually { supervisor.liveWorkers.count == 2 && supervisor.ctl(["workers"]).out == "2\n" }, "\(supervisor.log)")
        usleep(500_000)
        #expect(supervisor.ctl(["workers"]).out == "2\n", "a SIGTTIN sent during prestart added a worker after the start")
        #expect(supervisor.liveWorkers.count == 2)
        let log = supervisor.log
        #expect(log.contains("prestart: SIGTTIN ignored: the workers have not started yet"), "\(log)")
        #expect(log.contains("prestart: SIGHUP ignored: the workers have not started yet"), "\(log)")
        #expect(!log.contains("reloading the configuration"), "\(log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("a failing prestart ends the start with status 1, a message naming the command and its status, and no socket or worker")
    func failingPrestartEndsTheStart() throws {
        let directory = Paths.temporaryDirectory()
        let recorder = try NotifyRecorder(directory: directory)
        let supervisor = try SupervisorProcess(["--workers", "2", "--prestart", "sh -c 'echo cannot-build >&2; exit 3'"],
                                               environment: ["NOTIFY_SOCKET": recorder.socketPath], directory: directory)
        #expect(supervisor.waitForExit(timeout: 10) == 1, "\(supervisor.log)")
        let log = supervisor.log
        #expect(log.contains("cannot-build"), "\(log)")
        #expect(log.contains("error: prestart /usr/bin/sh -c 'echo cannot-build >&2; exit 3' exited with status 3; no worker was started"), "\(log)")
        #expect(supervisor.startedWorkers.isEmpty && !log.contains("listening on"), "\(log)")
        #expect(httpGet(port: supervisor.port) == nil, "nothing may listen after a failed prestart")
        #expect(recorder.messages.contains { $0.hasPrefix("STATUS=prestart failed: ") && $0.hasSuffix("exited with status 3") }, "\(recorder.messages)")
        #expect(!recorder.messages.contains("READY=1"), "\(recorder.messages)")
    }

    @Test("SIGTERM during prestart sends it SIGTERM, SIGKILLs it after graceful_timeout if it stays, and exits 0 without starting workers")
    func sigtermDuringPrestart() throws {
        let directory = Paths.temporaryDirectory()
        let recorder = try NotifyRecorder(directory: directory)
        // A prestart that ignores SIGTERM (its `sleep` child in the same process group does not).
        let script = "trap \"echo prestart-got-term\" TERM; sleep 30 & wait; sleep 30 & wait"
        let supervisor = try SupervisorProcess(["--workers", "2", "--graceful-timeout", "1s", "--prestart", "sh -c '\(script)'"],
                                               environment: ["NOTIFY_SOCKET": recorder.socketPath], directory: directory)
        #expect(eventually { supervisor.log.contains("prestart: running") }, "\(supervisor.log)")
        let prestart = ProcFS.children(of: supervisor.pid)
        #expect(prestart.count == 1, "\(prestart)")
        let group = Set(prestart)
        #expect(eventually { ProcFS.members(ofGroups: group).count >= 2 }, "the prestart's sleep runs in its process group")
        let start = Date()
        supervisor.signal(SIGTERM)
        let status = supervisor.waitForExit(timeout: 6)
        let elapsed = Date().timeIntervalSince(start)
        #expect(status == 0, "\(supervisor.log)")
        #expect(elapsed >= 0.9 && elapsed < 4, "SIGKILL follows graceful_timeout (1s): took \(elapsed)s")
        let log = supervisor.log
        #expect(log.contains("prestart-got-term") && log.contains("killing it") && !log.contains("listening on"), "\(log)")
        #expect(eventually { ProcFS.members(ofGroups: group).isEmpty }, "nothing of the prestart is left")
        #expect(recorder.messages.contains { $0.hasPrefix("STOPPING=1|STATUS=stopping: prestart ") && $0.hasSuffix("|EXTEND_TIMEOUT_USEC=6000000") },
                "\(recorder.messages)")
        #expect(!recorder.messages.contains("READY=1"), "\(recorder.messages)")
    }
}
