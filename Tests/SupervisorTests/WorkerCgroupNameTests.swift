@testable import Supervisor
import Testing

/// Which leftover shared cgroup bases a start may judge: only its own pid namespace's (and an earlier
/// build's, which named the pid alone), and only names that can be a supervisor's.
@Suite("Shared worker cgroup names")
struct WorkerCgroupNameTests {
    @Test("hyperglass-NS-PID names its creator in our namespace only; hyperglass-PID (an earlier build) too; nothing else")
    func creators() {
        let ns = WorkerCgroups.pidNamespace
        #expect(WorkerCgroups.sharedBaseName(pid: 4242) == "hyperglass-\(ns)-4242")
        #expect(WorkerCgroups.creator(ofSharedBase: "hyperglass-\(ns)-4242") == 4242)
        #expect(WorkerCgroups.creator(ofSharedBase: "hyperglass-4242") == 4242)
        #expect(WorkerCgroups.creator(ofSharedBase: "hyperglass-1\(ns)-4242") == nil, "another namespace's")
        for name in ["hyperglass-", "hyperglass--1", "hyperglass-\(ns)-0", "hyperglass-\(ns)--5", "hyperglass-\(ns)-+5", "hyperglass-0",
                     "hyperglass-\(ns)-99999999999", "hyperglass-\(ns)-1-2", "hyperglass-oom-test-1", "other-\(ns)-1"] {
            #expect(WorkerCgroups.creator(ofSharedBase: name) == nil, "\(name)")
        }
    }
}
