/// What the pool's policy reads: the settings of the release it runs, plus what systemd told the supervisor.
/// Fields read through to `Settings` (`policy.readyTimeout`), so a new key needs no copy here.
@dynamicMemberLookup
public struct PoolPolicy: Equatable, Sendable {
    public var settings: Settings
    /// How often to send WATCHDOG=1 upwards: half of the supervisor's own WATCHDOG_USEC, if set.
    public var systemdWatchdogInterval: Duration? = nil

    /// The bare policy (core tests, a pool before any configuration) is the simplest: `exec` readiness and
    /// no settle period. The operator's defaults (`accepting`, `min_ready = 3s`) are `Settings()`'s.
    public init() {
        settings = Settings()
        settings.readiness = .exec
        settings.minReady = .zero
    }

    public init(settings: Settings, systemdWatchdog: Duration?) {
        self.settings = settings
        systemdWatchdogInterval = systemdWatchdog.map { $0 / 2 }
    }

    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<Settings, Value>) -> Value {
        get { settings[keyPath: keyPath] }
        set { settings[keyPath: keyPath] = newValue }
    }
}
