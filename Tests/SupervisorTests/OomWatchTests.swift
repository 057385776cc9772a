@testable import Supervisor
import Testing

/// How an OOM kill is recognised: the kernel's log record, and a v2 cgroup's memory.events.
@Suite("OOM kills from the kernel's words")
struct OomWatchTests {
    @Test("a memory cgroup's and the global OOM killer's kmsg records name the pid; other records none")
    func kmsgRecords() {
        #expect(OomWatch.killedPid(record: "3,1234,5678,-;Memory cgroup out of memory: Killed process 4242 (python3) total-vm:1024kB, anon-rss:900kB") == 4242)
        #expect(OomWatch.killedPid(record: "3,1,2,-;Out of memory: Killed process 77 (app) total-vm:1kB") == 77)
        #expect(OomWatch.killedPid(record: "6,1,2,-;eth0: link up") == nil)
    }

    @Test("memory.events counts oom_kill; oom alone (the limit hit, nothing killed) is not a kill")
    func memoryEvents() {
        #expect(OomWatch.oomKills(memoryEvents: "low 0\nhigh 3\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n") == 1)
        #expect(OomWatch.oomKills(memoryEvents: "low 0\nhigh 0\nmax 2\noom 1\noom_kill 0\n") == 0)
    }
}
