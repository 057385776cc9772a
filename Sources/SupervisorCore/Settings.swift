/// How many workers to run: a fixed number, derived from the machine, or autoscaled within a range.
public enum WorkerCount: Equatable, Sendable, CustomStringConvertible {
    case auto
    case fixed(Int)
    /// `auto:MIN-MAX`: start at MIN, let the autoscaler move the count within the range.
    case range(ClosedRange<Int>)

    /// 2 × `onlineCPUs`, exactly 1 in debug mode. The shell passes the CPUs the supervisor may use
    /// (`CpuBudget`: online, affinity mask and cgroup quotas, the smallest), not merely those online.
    public func resolve(onlineCPUs: Int, debug: Bool) -> Int {
        switch self {
        case .fixed(let n): return n
        case .auto: return debug ? 1 : max(1, 2 * onlineCPUs)
        case .range(let range): return range.lowerBound
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .fixed(let n): return String(n)
        case .range(let range): return "auto:\(range.lowerBound)-\(range.upperBound)"
        }
    }
}

/// When a freshly started worker counts as ready.
public enum Readiness: String, Equatable, Sendable, CaseIterable {
    /// Once /proc shows the worker's process tree accepting on an inherited listening socket
    /// (registered in an epoll set, or a thread in accept/poll/select on it). Needs nothing from the worker.
    case accepting
    /// As soon as exec succeeded.
    case exec
    /// When the worker sends READY=1 on NOTIFY_SOCKET.
    case notify
    /// At the first good HTTP probe of health_path on the worker's own health socket.
    case http
}

/// What to do when a slot keeps failing: retry at the maximum backoff, or give up so that
/// systemd's `Restart=` (or the orchestrator) takes over.
public enum CrashLoopPolicy: String, Equatable, Sendable, CaseIterable {
    case keepTrying = "keep-trying"
    case exit
}

/// Where to listen: the supervisor binds each once and keeps it for its whole life.
public enum BindAddress: Equatable, Sendable, CustomStringConvertible {
    /// host is nil for "all interfaces" (":8001"); IPv6 literals are stored without brackets.
    case tcp(host: String?, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host?, let port) where host.contains(":"): return "[\(host)]:\(port)"
        case .tcp(let host?, let port): return "\(host):\(port)"
        case .tcp(nil, let port): return ":\(port)"
        }
    }
}

/// The effective configuration: defaults, then the file, then HYPERGLASS_* variables, then flags.
/// Each field is set and printed by its entry in `ConfigKey.all`; the pool reads it through `PoolPolicy`.
public struct Settings: Equatable, Sendable {
    public var workers: WorkerCount = .auto
    public var maxWorkers: Int = 1024
    /// Why `maxWorkers` is lower than configured: the limit that capped it (`ResourceLimits`); not a key.
    public var capacityLimit: String? = nil
    public var bind: [BindAddress] = [.tcp(host: "localhost", port: 8001)]
    /// Whether workers get their listeners with O_NONBLOCK. No, as systemd hands them (`NonBlocking=no`):
    /// a plain blocking accept() (Python's socketserver, sd_listen_fds(3)'s example) then works.
    public var nonBlocking: Bool = false
    public var gracefulTimeout: Duration = .seconds(30)
    /// How long a stop signal leaves the pool serving while reporting not-ready, before the drain; zero: off.
    public var lameDuck: Duration = .zero
    public var controlSocket: String? = nil
    public var controlGroup: String? = nil
    /// The supervisor's own HTTP listener for /metrics, /readyz and /livez; nil: none (the default).
    public var metricsBind: BindAddress? = nil
    public var debug: Bool = false
    public var crashLoop: CrashLoopPolicy = .keepTrying
    /// A command run to completion before the first workers start (Sources/Supervisor/Prestart.swift); empty: none.
    public var prestart: [String] = []
    /// The worker command; empty means the bundled hyperglass-worker.
    public var command: [String] = []
    public var environment: [String] = []
    /// A hard memory limit per worker, children included (its cgroup's v2 `memory.max`): the OOM killer
    /// then ends that worker only. Needs a writable v2 memory controller; nil: none.
    public var memoryMax: UInt64? = nil
    /// `accepting` needs nothing from the worker and means serving (docs/readiness.md); `exec` stays a choice.
    public var readiness: Readiness = .accepting
    public var readyTimeout: Duration = .seconds(60)
    /// How long a roll's successor must stay ready before its predecessor drains (Kubernetes' minReadySeconds).
    /// 3 s catches a release that starts, accepts, and dies a couple of seconds later (a failed startup hook).
    public var minReady: Duration = .seconds(3)
    public var backoff = BackoffPolicy()
    /// Consecutive failures of one slot that make a crash loop.
    public var crashLoopThreshold: Int = 5
    /// New workers starting at once during a roll (Kubernetes' maxSurge, 25 % by default); one that is
    /// ready and settling no longer counts, so the next start overlaps its `min_ready`.
    public var maxSurge: MaxSurge = .standard
    public var health = HealthPolicy()
    /// Autoscaling: quiet time before the pool shrinks (then a step every third of it).
    public var scaleDownDelay: Duration = .seconds(30)

    /// The autoscaling range, when `workers = auto:MIN-MAX`.
    public var autoscaleRange: ClosedRange<Int>? {
        if case .range(let range) = workers { return range }
        return nil
    }

    public init() {}
}
