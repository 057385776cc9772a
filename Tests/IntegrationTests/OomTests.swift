import Foundation
import Glibc
import Testing

/// A worker the kernel's OOM killer ends is reported as `oom` (issue 21): status, metrics and the log say
/// so, the supervisor and the other worker are untouched, and the slot restarts.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct OomTests {
    static let oomWorker = Paths.fixtures + "/oomworker.py"
    static let v1MemoryWritable = getuid() == 0 && access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0
        && access("/sys/fs/cgroup/memory", W_OK) == 0 && access("/dev/kmsg", R_OK) == 0

    @Test("inside a 300M v1 memory cgroup, a worker that grows is OOM-killed and reported as oom; every kernel kill is reported, and the other worker keeps its pid unless the kernel took it too",
          .enabled(if: v1MemoryWritable, "needs root, a writable v1 memory hierarchy and /dev/kmsg"))
    func oomKillIsNamed() throws {
        let cgroup = "/sys/fs/cgroup/memory/hyperglass-oom-test-\(getpid())"
        #expect(mkdir(cgroup, 0o755) == 0)
        defer { _ = eventually(timeout: 5) { rmdir(cgroup) == 0 } }
        try "300M".write(toFile: cgroup + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)
        let directory = Paths.temporaryDirectory()
        let metricsPort = freePort()
        let began = OomTests.uptime()
        let supervisor = try SupervisorProcess(["--workers", "2", "--metrics-bind", "127.0.0.1:\(metricsPort)",
                                                "--", OomTests.oomWorker, "--record", directory + "/workers.log"],
                                               worker: nil, directory: directory,
                                               launcher: ["/bin/sh", "-c", "echo $$ > \(cgroup)/cgroup.procs && exec \"$0\" \"$@\""])
        #expect(eventually(timeout: 10) { supervisor.records.count >= 2 }, "\(supervisor.log)")
        let other = supervisor.records.first { $0.hasSuffix(" started 1") }.flatMap { Int32($0.prefix { $0 != " " }) }
        #expect(eventually(timeout: 15) { supervisor.ctl(["status", "--json"]).out.contains("\"last_exit\":\"killed by the kernel's OOM killer") },
                "\(supervisor.log)")
        #expect(supervisor.log.contains("exited unexpectedly: killed by the kernel's OOM killer (out of memory)"), "\(supervisor.log)")
        #expect(eventually(timeout: 10) { supervisor.ctl(["status"]).out.contains("2/2 workers ready") }, "the slot restarted: \(supervisor.log)")
        // Every kill is the kernel's, and each is reported as oom. On a loaded machine the kernel may take a second
        // process of the same memory cgroup while the first victim's memory is still being freed (dmesg: the
        // 7 MB worker killed 8 ms after the 297 MB one); the other worker is then gone by the kernel's hand, and said so.
        let ours = Set(supervisor.records.compactMap { Int32($0.prefix { $0 != " " }) })
        let killed = OomTests.killedByKernel(since: began).intersection(ours)
        #expect(!killed.isEmpty, "\(OomTests.kernelLog())")
        #expect(eventually(timeout: 5) {
            httpGet(port: metricsPort, path: "/metrics")?.contains("hyperglass_worker_failures_total{reason=\"oom\"} \(killed.count)") == true
        }, "\(killed.count) OOM kills: \(supervisor.log)")
        if let other, !killed.contains(other) {
            #expect(ProcFS.isAlive(other), "the other worker, which the kernel did not kill, is untouched: \(supervisor.log)")
            #expect(supervisor.records.filter { $0.hasSuffix(" started 1") }.count == 1, "\(supervisor.records)")
        }
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0, "the supervisor survived and stops cleanly")
    }

    /// The pids the kernel's OOM killer has killed since `since` (seconds after boot, as dmesg stamps them).
    static func killedByKernel(since: Double) -> Set<Int32> {
        let lines = runProgram("/bin/sh", ["-c", "dmesg 2>/dev/null | grep 'Killed process [0-9]'"]).out.split(separator: "\n")
        return Set(lines.compactMap { line -> Int32? in
            // "[12189.291523] Memory cgroup out of memory: Killed process 24691 (python3) ..."
            guard let stamp = Double(line.dropFirst().prefix { $0 != "]" }.trimmingCharacters(in: .whitespaces)), stamp >= since,
                  let range = line.range(of: "Killed process ") else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        })
    }

    /// Seconds since boot, as dmesg stamps its records.
    static func uptime() -> Double {
        Double((try? String(contentsOfFile: "/proc/uptime", encoding: .utf8))?.split(separator: " ").first ?? "") ?? 0
    }

    /// The kernel's last OOM records, for a failure's message: which process it chose, and why.
    static func kernelLog() -> String {
        runProgram("/bin/sh", ["-c", "dmesg 2>/dev/null | grep -iE 'oom|killed process|memory cgroup' | tail -20"]).out
    }

    /// The v2 hierarchy offers no memory controller here (a hybrid machine's v2 has only hugetlb).
    static let noV2Memory: Bool = {
        let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].first { FileManager.default.fileExists(atPath: $0 + "/cgroup.controllers") }
        guard let mount, let offered = try? String(contentsOfFile: mount + "/cgroup.controllers", encoding: .utf8) else { return true }
        return !offered.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("memory")
    }()

    @Test("where no v2 memory controller is offered, check-config and start say memory_max cannot be enforced",
          .enabled(if: noV2Memory, "this machine's v2 hierarchy offers a memory controller"))
    func memoryMaxUnenforceableIsSaid() throws {
        let result = runProgram(Paths.hyperglass, ["check-config", "--memory-max", "512M"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("# memory_max: cannot be enforced here: ") && result.out.contains("\nmemory_max = 512M\n"), "\(result.out)")
        let supervisor = try SupervisorProcess(["--workers", "1", "--readiness", "exec", "--memory-max", "512M"])
        #expect(eventually(timeout: 10) { supervisor.log.contains("memory_max = 512M cannot be enforced here: ") }, "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }
}
