import Foundation
import Glibc
import Testing

/// `workers = auto` from the CPUs we may use, seen through check-config and a running supervisor:
/// a taskset mask, a v1 CPU quota, and a v1 memory limit for autoscaling's ceiling (issues 21, 25.12).
@Suite(.serialized, .timeLimit(.minutes(1)))
struct CpuBudgetIntegrationTests {
    static let v1Writable = getuid() == 0 && access("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", F_OK) == 0 && access("/sys/fs/cgroup/cpu", W_OK) == 0
    static let v1MemoryWritable = getuid() == 0 && access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0 && access("/sys/fs/cgroup/memory", W_OK) == 0

    @Test("under taskset -c 0, workers = auto is 2 and check-config names the affinity mask",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset"), "needs taskset"))
    func affinityMask() {
        let result = runProgram("/usr/bin/taskset", ["-c", "0", Paths.hyperglass, "check-config"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("# workers: 2 = 2 × 1 CPU (affinity mask;"), "\(result.out)")
    }

    @Test("inside a v1 cgroup with a CPU quota of one CPU, workers = auto is 2 and check-config names cfs_quota_us",
          .enabled(if: v1Writable, "needs root and a writable v1 cpu hierarchy"))
    func v1CpuQuota() throws {
        let cgroup = "/sys/fs/cgroup/cpu/hyperglass-test-\(getpid())"
        #expect(mkdir(cgroup, 0o755) == 0)
        defer { rmdir(cgroup) }
        try "100000".write(toFile: cgroup + "/cpu.cfs_quota_us", atomically: false, encoding: .utf8)
        let result = runProgram("/bin/sh", ["-c", "echo $$ > \(cgroup)/cgroup.procs && exec \(Paths.hyperglass) check-config"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("# workers: 2 = 2 × 1 CPU (\(cgroup)/cpu.cfs_quota_us 100000, cpu.cfs_period_us 100000)"), "\(result.out)")
    }

    @Test("under a 1 GiB v1 memory limit, max_memory 256M caps autoscaling at 4",
          .enabled(if: v1MemoryWritable, "needs root and a writable v1 memory hierarchy"))
    func v1MemoryCeiling() throws {
        let cgroup = "/sys/fs/cgroup/memory/hyperglass-test-\(getpid())"
        #expect(mkdir(cgroup, 0o755) == 0)
        defer { rmdir(cgroup) }
        try "1G".write(toFile: cgroup + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)
        let supervisor = try SupervisorProcess(["--workers", "auto:1-16", "--max-memory", "256M", "--readiness", "exec"],
                                               launcher: ["/bin/sh", "-c", "echo $$ > \(cgroup)/cgroup.procs && exec \"$0\" \"$@\""])
        #expect(eventually(timeout: 10) { supervisor.ctl(["status"]).out.contains("autoscaling 1-4") }, "\(supervisor.ctl(["status"]).out) \(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        // Its workers have left the cgroup; it must be empty before rmdir.
        _ = eventually(timeout: 5) { ((try? String(contentsOfFile: cgroup + "/cgroup.procs", encoding: .utf8)) ?? "").isEmpty }
    }
}
