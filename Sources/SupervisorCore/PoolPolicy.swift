/// The part of `Settings` the pool's policy reads, plus what systemd told the supervisor.
public struct PoolPolicy: Equatable, Sendable {
    /// The bare policy's defaults are the simplest (exec, no settle); the operator's come from `Settings`.
    public var readiness: Readiness = .exec
    public var readyTimeout: Duration = .seconds(60)
    /// A successor stays ready this long before its predecessor drains; exiting meanwhile is a failed start.
    public var minReady: Duration = .zero
    public var gracefulTimeout: Duration = .seconds(30)
    public var backoff = BackoffPolicy()
    public var crashLoop: CrashLoopPolicy = .keepTrying
    public var crashLoopThreshold = 5
    public var maxWorkers = 1024
    /// Successors started at once during a roll.
    public var maxSurge = 1
    public var health = HealthPolicy()
    /// How often to send WATCHDOG=1 upwards: half of the supervisor's own WATCHDOG_USEC, if set.
    public var systemdWatchdogInterval: Duration? = nil

    public init() {}

    public init(settings: Settings, systemdWatchdog: Duration?) {
        readiness = settings.readiness
        readyTimeout = settings.readyTimeout
        minReady = settings.minReady
        gracefulTimeout = settings.gracefulTimeout
        backoff = settings.backoff
        crashLoop = settings.crashLoop
        crashLoopThreshold = settings.crashLoopThreshold
        maxWorkers = settings.maxWorkers
        maxSurge = settings.maxSurge
        health = settings.health
        systemdWatchdogInterval = systemdWatchdog.map { $0 / 2 }
    }
}
