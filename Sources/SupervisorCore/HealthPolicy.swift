/// How the supervisor tells "running" from "serving": per-worker watchdog, HTTP probes, a memory
/// ceiling, and whether systemd's watchdog hears from a supervisor whose pool cannot get ready.
public struct HealthPolicy: Equatable, Sendable {
    /// WATCHDOG_USEC given to each worker; nil: no worker watchdog. Enforced once a worker pinged.
    public var workerWatchdog: Duration? = nil
    /// Sent to a worker that missed its watchdog (SIGABRT, like systemd's WatchdogSignal=).
    public var watchdogSignal: Signal = .abort
    /// After the watchdog signal, SIGKILL follows this much later if the worker is still there.
    public var watchdogKillAfter: Duration = .seconds(5)
    /// The path probed with GET on each worker's own health socket; nil: no probes.
    public var probePath: String? = nil
    public var probeInterval: Duration = .seconds(10)
    public var probeTimeout: Duration = .seconds(2)
    /// Consecutive failed probes that make a ready worker unhealthy.
    public var probeFailures = 3
    /// Probe failures this soon after start do not count; nil means `ready_timeout`.
    public var probeGrace: Duration? = nil
    /// How often a worker that is not ready yet is probed when readiness is `http`.
    public var readyProbeInterval: Duration = .milliseconds(250)
    /// A worker using more memory than this (bytes) is replaced gracefully; nil: no ceiling.
    public var maxMemory: UInt64? = nil
    /// Stop pinging systemd's watchdog once no worker has been ready for `unreadyTimeout`.
    public var watchdogRequiresReady = true
    public var unreadyTimeout: Duration = .seconds(60)
    /// A connection waiting this long on a listener, unaccepted, means the workers do not take connections:
    /// `/readyz` and `health` say not ready, and a reload whose new workers leave one waiting this long
    /// rolls back. Zero: never judged.
    public var backlogWait: Duration = .seconds(2)

    public init() {}

    /// Memory is read as often as probes run.
    var memoryCheckInterval: Duration { probeInterval }
}

/// The outcome of one HTTP probe, as the shell saw it.
public struct ProbeResult: Equatable, Sendable {
    public let ok: Bool
    public let latency: Duration
    /// "200", "HTTP 500", "timed out after 2s", "connection refused"...
    public let detail: String

    public init(ok: Bool, latency: Duration, detail: String) {
        self.ok = ok
        self.latency = latency
        self.detail = detail
    }
}

/// One worker's health as the core tracks it.
public struct WorkerHealth: Equatable, Sendable {
    /// The worker's own watchdog interval (WATCHDOG_USEC= from the worker may change it).
    public internal(set) var watchdogInterval: Duration? = nil
    /// Armed by the worker's first WATCHDOG=1; missing it is a hang.
    public internal(set) var watchdogDeadline: Instant? = nil
    public internal(set) var lastWatchdogAt: Instant? = nil
    public internal(set) var probeDue: Instant? = nil
    public internal(set) var probing = false
    public internal(set) var failedProbes = 0
    public internal(set) var lastProbe: ProbeResult? = nil
    /// When a memory ceiling breach turns into a replacement (jittered, so workers do not recycle together).
    public internal(set) var recycleAt: Instant? = nil
    /// Why the supervisor is replacing or killed this worker ("watchdog missed", "3/3 probes failed: HTTP 500").
    public internal(set) var verdict: String? = nil
    /// The kind of verdict: watchdog, probe or memory.
    public internal(set) var verdictCause: FailureReason? = nil

    /// Words for `hyperglassctl status`.
    public func summary(threshold: Int) -> String {
        if let verdict { return verdict }
        if failedProbes > 0 { return "failing \(failedProbes)/\(threshold)" }
        return "ok"
    }
}
