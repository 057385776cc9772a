import CHyperglass
import Glibc
import SupervisorCore

/// Reads the limits the kernel puts on the supervisor from its cgroups, v2 (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid machine) and v1 (`/sys/fs/cgroup/<controller>`), the own
/// cgroup and every ancestor: a limit on a parent binds as much as one on the cgroup itself.
enum CgroupLimits {
    static func membership() -> CgroupMembership {
        CgroupMembership(procSelfCgroup: (try? Sys.readFile("/proc/self/cgroup", limit: 8192)) ?? "")
    }

    /// The v2 hierarchy's mount point, if there is one.
    static func unifiedMount() -> String? {
        ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].first { Sys.fileExists("\($0)/cgroup.controllers") }
    }

    /// The directories holding `path` and its ancestors under `mount`, deepest first. Without a cgroup
    /// namespace a container sees its own cgroup at the mount's root while /proc names the host's path:
    /// then only the mount's root is ours to read.
    static func lineage(mount: String, path: String) -> [String] {
        let paths = CgroupMembership.lineage(path)
        guard Sys.fileExists(mount + (path == "/" ? "" : path)) else { return [mount] }
        return paths.map { mount + ($0 == "/" ? "" : $0) }
    }

    static func cpuQuotas() -> [CpuQuota] {
        let member = membership()
        var quotas: [CpuQuota] = []
        if let mount = unifiedMount(), let path = member.unified {
            for directory in lineage(mount: mount, path: path) {
                if let text = try? Sys.readFile("\(directory)/cpu.max", limit: 64), let quota = CpuQuota.cpuMax(text, at: shown(directory)) {
                    quotas.append(quota)
                }
            }
        }
        if let path = member.v1["cpu"], Sys.fileExists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") {
            for directory in lineage(mount: "/sys/fs/cgroup/cpu", path: path) {
                if let quota = try? Sys.readFile("\(directory)/cpu.cfs_quota_us", limit: 64),
                   let period = try? Sys.readFile("\(directory)/cpu.cfs_period_us", limit: 64),
                   let limit = CpuQuota.cfs(quota: quota, period: period, at: shown(directory)) {
                    quotas.append(limit)
                }
            }
        }
        return quotas
    }

    /// The smallest memory limit of the supervisor's cgroups (v2 `memory.max`, v1 `memory.limit_in_bytes`).
    static func memoryLimit() -> UInt64? {
        let member = membership()
        var files: [String] = []
        if let mount = unifiedMount(), let path = member.unified {
            files += lineage(mount: mount, path: path).map { "\($0)/memory.max" }
        }
        if let path = member.v1["memory"], Sys.fileExists("/sys/fs/cgroup/memory/memory.limit_in_bytes") {
            files += lineage(mount: "/sys/fs/cgroup/memory", path: path).map { "\($0)/memory.limit_in_bytes" }
        }
        return files.compactMap { (try? Sys.readFile($0, limit: 64)).flatMap(MemoryLimit.parse) }.min()
    }

    /// Why a per-worker `memory_max` cannot be enforced, nil when it can: the workers' cgroups
    /// (`cgroups`, as set up) or, for check-config, the supervisor's own cgroup must offer the v2 memory controller.
    static func memoryMaxUnenforceable(_ cgroups: WorkerCgroups?) -> String? {
        if let cgroups { return cgroups.controllers.contains("memory") ? nil : "the v2 hierarchy offers no memory controller to \(cgroups.base) (a hybrid machine's v2 has none; under systemd use Delegate=yes)" }
        guard let mount = unifiedMount(), let path = membership().unified else { return "no cgroup v2 hierarchy is mounted" }
        let own = mount + (path == "/" ? "" : path)
        guard access(own, W_OK) == 0 else { return "the supervisor's v2 cgroup \(own) is not writable (under systemd use Delegate=yes)" }
        let offered = ((try? Sys.readFile(own + "/cgroup.controllers", limit: 1024)) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
        return offered.contains("memory") ? nil : "the v2 hierarchy offers no memory controller at \(own) (a hybrid machine's v2 has none)"
    }

    /// The CPUs `workers = auto` counts: online, affinity mask and quotas, the smallest.
    static func cpuBudget() -> CpuBudget {
        let affinity = hg_affinity_cpus()
        return CpuBudget.of(online: Sys.onlineCPUs(), affinity: affinity > 0 ? Int(affinity) : nil, quotas: cpuQuotas())
    }

    /// A directory as check-config names a file in it: "/sys/fs/cgroup/cpu/box/".
    private static func shown(_ directory: String) -> String { directory + "/" }
}
