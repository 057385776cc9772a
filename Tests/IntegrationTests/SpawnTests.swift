import Foundation
import Glibc
import Testing

/// The spawn path as the shell runs it: forks spread over loop turns, exec results read from epoll.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct SpawnTests {
    @Test("a command that cannot be exec'd is reported with its errno, and the supervisor keeps serving")
    func execFailureReportsErrno() throws {
        let directory = Paths.temporaryDirectory()
        // Executable, but neither ELF nor "#!": execve fails with ENOEXEC in the child, after fork.
        let command = directory + "/not-a-program"
        try "this is not a program\n".write(toFile: command, atomically: true, encoding: .utf8)
        chmod(command, 0o755)
        let supervisor = try SupervisorProcess(["--workers", "1", "--", command], worker: nil, directory: directory)
        #expect(eventually { supervisor.log.contains("worker 0 could not start: start \(command): Exec format error") }, "\(supervisor.log)")
        #expect(supervisor.ctl(["ping"]).out.contains("pong"))
        #expect(supervisor.liveWorkers.isEmpty, "the failed child must have been reaped: \(supervisor.liveWorkers)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("a scale-up to 40 starts every worker with its own LISTEN_PID, and ping is answered meanwhile")
    func bigScaleUp() throws {
        let supervisor = try SupervisorProcess(["--workers", "2"])
        #expect(eventually { supervisor.startedWorkers.count == 2 }, "\(supervisor.log)")
        let scale = supervisor.ctl(["workers", "40"])
        #expect(scale.status == 0, "\(scale.err)")
        let ping = supervisor.ctl(["ping"])
        #expect(ping.out.contains("pong"))
        #expect(eventually(timeout: 30) { supervisor.startedWorkers.count == 40 && supervisor.liveWorkers.count == 40 }, "\(supervisor.log)")
        for record in supervisor.records where record.contains(" started ") {
            let pid = String(record.prefix { $0 != " " })
            #expect(record.contains("listen_pid=\(pid) "), "LISTEN_PID must be the worker's own pid: \(record)")
            #expect(record.contains("pgid=\(pid) "), "each worker leads its own process group: \(record)")
        }
        #expect(!supervisor.log.contains("internal:"), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 20) == 0)
        #expect(supervisor.noWorkerLeft)
    }
}
