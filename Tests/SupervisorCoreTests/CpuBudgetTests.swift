import SupervisorCore
import Testing

/// `workers = auto` counts the CPUs the supervisor may use: affinity and every cgroup quota, not the
/// CPUs online (gunicorn issue 2028).
@Suite("CPU budget and cgroup facts")
struct CpuBudgetTests {
    @Test("a hybrid machine's /proc/self/cgroup gives the v2 path and each v1 controller's")
    func parsesHybridMembership() {
        let member = CgroupMembership(procSelfCgroup: "9:name=systemd:/\n4:memory:/box/a\n1:cpu,cpuacct:/box\n0::/svc.service\n")
        #expect(member.unified == "/svc.service")
        #expect(member.v1 == ["memory": "/box/a", "cpu": "/box", "cpuacct": "/box"])
    }

    @Test("a cgroup's lineage runs from itself to the root")
    func lineageToRoot() {
        #expect(CgroupMembership.lineage("/a/b") == ["/a/b", "/a", "/"])
        #expect(CgroupMembership.lineage("/") == ["/"])
    }

    @Test("cpu.max of 200000 100000 is 2 CPUs, 'max' none, and a part CPU rounds up")
    func parsesCpuMax() {
        #expect(CpuQuota.cpuMax("200000 100000\n")?.cpus == 2)
        #expect(CpuQuota.cpuMax("max 100000\n") == nil)
        #expect(CpuQuota.cpuMax("150000 100000")?.cpus == 2)
        #expect(CpuQuota.cpuMax("5000 100000")?.cpus == 1)
    }

    @Test("a v1 cfs quota of -1 is no limit; 100000 of 100000 is one CPU")
    func parsesCfsQuota() {
        #expect(CpuQuota.cfs(quota: "-1\n", period: "100000\n") == nil)
        #expect(CpuQuota.cfs(quota: "100000\n", period: "100000\n")?.cpus == 1)
    }

    @Test("v1's unlimited memory (PAGE_COUNTER_MAX pages) and v2's max are no limit; 1G is 1G")
    func parsesMemoryLimits() {
        #expect(MemoryLimit.parse("9223372036854771712\n") == nil)
        #expect(MemoryLimit.parse("max\n") == nil)
        #expect(MemoryLimit.parse("1073741824\n") == 1 << 30)
    }

    @Test("the smallest of online CPUs, affinity and quotas wins, and check-config says which")
    func smallestWins() {
        let quota = CpuQuota.cpuMax("200000 100000", at: "/sys/fs/cgroup/x/")!
        let budget = CpuBudget.of(online: 64, affinity: 8, quotas: [quota])
        #expect(budget.cpus == 2)
        #expect(budget.explain(workers: 4, debug: false) == "4 = 2 × 2 CPUs (/sys/fs/cgroup/x/cpu.max 200000 100000)")
        #expect(CpuBudget.of(online: 2, affinity: 1, quotas: []).explain(workers: 2, debug: false) == "2 = 2 × 1 CPU (affinity mask; 2 online)")
        #expect(CpuBudget.of(online: 2, affinity: 2, quotas: [CpuQuota.cpuMax("800000 100000")!]).cpus == 2)
    }
}
