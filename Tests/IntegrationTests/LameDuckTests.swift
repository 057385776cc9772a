import Foundation
import Glibc
import Testing

/// The lame-duck delay on the real binaries: every operator request is refused with the reason and exit 1,
/// whichever way it arrives, and nothing changes (issue 20: `workers 6` used to print "2 → 6", exit 0).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct LameDuckTests {
    /// One field of `status --json`'s supervisor object.
    static func supervisorField(_ supervisor: SupervisorProcess, _ key: String) -> Any? {
        let reply = supervisor.ctl(["status", "--json"])
        let json = try? JSONSerialization.jsonObject(with: Data(reply.out.utf8)) as? [String: Any]
        return (json?["supervisor"] as? [String: Any])?[key]
    }

    @Test("during the lame duck workers N, --wait, auto, reload, restart, SIGHUP and SIGTTIN are refused with the reason")
    func requestsRefusedDuringLameDuck() throws {
        let supervisor = try SupervisorProcess(["--workers", "auto:2-4", "--lame-duck", "20s"])
        // Both ready, not merely forked: a child shows in /proc before its spawn completes, and a SIGTERM while
        // the pool knows no worker yet drains at once (nothing to serve), which is no lame duck to test.
        #expect(eventually(timeout: 20) { Self.supervisorField(supervisor, "ready") as? Int == 2 })
        supervisor.signal(SIGTERM)
        #expect(eventually { Self.supervisorField(supervisor, "state") as? String == "lame-duck" })

        for arguments in [["workers", "6"], ["workers", "6", "--wait"], ["workers", "+1"], ["workers", "auto"],
                          ["reload"], ["reload", "--wait"], ["restart", "0"], ["restart", "all", "--wait"]] {
            let result = supervisor.ctl(arguments)
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.err.contains("the supervisor is stopping (lame duck: draining in "), "\(arguments): \(result.err)")
            #expect(result.out.isEmpty, "\(arguments) printed \(result.out)")
        }
        supervisor.signal(SIGHUP)
        supervisor.signal(SIGTTIN)
        #expect(eventually { supervisor.log.contains("SIGTTIN: cannot change the worker count: the supervisor is stopping (lame duck") })
        #expect(supervisor.log.contains("SIGHUP: cannot reload: the supervisor is stopping (lame duck"))
        #expect(Self.supervisorField(supervisor, "desired") as? Int == 2)
        #expect(supervisor.liveWorkers.count == 2)
        #expect(!supervisor.log.contains("autoscaling 2 →"), "no scale-up is even proposed during the lame duck")

        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 30) == 0)
        #expect(supervisor.noWorkerLeft)
    }
}
