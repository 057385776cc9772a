/// What the kernel's cgroup files say, parsed without touching them: the shell reads the text, these
/// functions decide what it means, and tests feed them the text of each kind of machine.
public struct CgroupMembership: Equatable, Sendable {
    /// The path in the v2 hierarchy (the `0::` line), if the process is in one.
    public var unified: String?
    /// The path in each v1 hierarchy, by controller name ("cpu", "memory"; "cpu,cpuacct" gives both).
    public var v1: [String: String]

    /// Parses /proc/self/cgroup: `ID:CONTROLLERS:PATH` lines; `0::PATH` is v2.
    public init(procSelfCgroup text: String) {
        unified = nil
        v1 = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0", parts[1].isEmpty { unified = path; continue }
            for controller in parts[1].split(separator: ",") where !controller.hasPrefix("name=") { v1[String(controller)] = path }
        }
    }

    /// `path` and each of its ancestors up to the root, deepest first ("/a/b" → "/a/b", "/a", "/").
    public static func lineage(_ path: String) -> [String] {
        var result: [String] = []
        var current = path.isEmpty ? "/" : path
        while true {
            result.append(current)
            if current == "/" { return result }
            guard let slash = current.lastIndex(of: "/") else { return result + ["/"] }
            current = slash == current.startIndex ? "/" : String(current[..<slash])
        }
    }
}

/// A CPU bandwidth limit: `quota` µs of CPU time every `period` µs, and the file that said so.
public struct CpuQuota: Equatable, Sendable {
    public let quota: Int
    public let period: Int
    /// Where it came from, as check-config shows it: "cpu.max 200000 100000".
    public let source: String

    /// The CPUs it allows, rounded up: 150000/100000 is 2 (a worker may use what a part-CPU leaves).
    public var cpus: Int { max(1, (quota + period - 1) / period) }

    /// v2 `cpu.max`: "max 100000" is no limit; "200000 100000" is two CPUs.
    public static func cpuMax(_ text: String, at path: String = "") -> CpuQuota? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 2, let quota = Int(fields[0]), let period = Int(fields[1]), quota > 0, period > 0 else { return nil }
        return CpuQuota(quota: quota, period: period, source: "\(path)cpu.max \(quota) \(period)")
    }

    /// v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`: a quota of -1 is no limit.
    public static func cfs(quota quotaText: String, period periodText: String, at path: String = "") -> CpuQuota? {
        guard let quota = Int(quotaText.trimmingNewlines), let period = Int(periodText.trimmingNewlines), quota > 0, period > 0 else { return nil }
        return CpuQuota(quota: quota, period: period, source: "\(path)cpu.cfs_quota_us \(quota), cpu.cfs_period_us \(period)")
    }
}

public enum MemoryLimit {
    /// A v2 `memory.max` or v1 `memory.limit_in_bytes` value in bytes; nil for "max" or v1's "unlimited"
    /// (PAGE_COUNTER_MAX pages: 9223372036854771712 with 4 KiB pages, so anything from 2^62 up).
    public static func parse(_ text: String) -> UInt64? {
        guard let value = UInt64(text.trimmingNewlines), value < (1 << 62) else { return nil }
        return value
    }
}

/// How many CPUs the supervisor may use, and why: the smallest of what is online, the affinity mask
/// and every CPU quota on the way to the root (gunicorn issue 2028: 2 × 64 online CPUs in a
/// container limited to 2 gave 129 workers).
public struct CpuBudget: Equatable, Sendable {
    public let cpus: Int
    /// In check-config's words: "2 CPUs (cpu.max 200000 100000)".
    public let reason: String

    public init(cpus: Int, reason: String) {
        self.cpus = cpus
        self.reason = reason
    }

    public static func of(online: Int, affinity: Int?, quotas: [CpuQuota]) -> CpuBudget {
        var budget = CpuBudget(cpus: max(1, online), reason: "\(plural(max(1, online), "CPU")) online")
        if let affinity, affinity > 0, affinity < budget.cpus {
            budget = CpuBudget(cpus: affinity, reason: "\(plural(affinity, "CPU")) (affinity mask; \(online) online)")
        }
        for quota in quotas where quota.cpus < budget.cpus {
            budget = CpuBudget(cpus: quota.cpus, reason: "\(plural(quota.cpus, "CPU")) (\(quota.source))")
        }
        return budget
    }

    /// check-config's note for `workers = auto`: "4 = 2 × 2 CPUs (cpu.max 200000 100000)".
    public func explain(workers: Int, debug: Bool) -> String {
        debug ? "\(workers) (debug)" : "\(workers) = 2 × \(reason)"
    }
}

private func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

extension String {
    var trimmingNewlines: Substring {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == " " { s = s.dropLast() }
        return s
    }
}
