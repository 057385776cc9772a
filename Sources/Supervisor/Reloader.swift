import SupervisorCore

/// Re-reads the configuration for a reload, and decides what of it a running supervisor can apply.
struct Reloader {
    let invocation: Invocation
    let environment: [String: String]
    let onlineCPUs: Int
    /// The settings in effect since start or the last successful reload.
    private(set) var current: Settings
    /// Loaded for a reload that is still rolling: they become `current` only if it succeeds.
    private(set) var pending: (rollID: Int, settings: Settings)? = nil

    /// What a reload applies: the new settings, a new worker count if the configured one changed,
    /// and the changed options that need a full restart.
    struct Plan {
        let settings: Settings
        let count: Int?
        let needRestart: [String]
    }

    /// Loads and validates; the error says what is wrong and where, and nothing has changed yet.
    mutating func load(runningCount: Int, rollID: Int) throws(ConfigError) -> Plan {
        let settings = try Configuration.load(invocation, environment: environment).settings
        let configured = settings.workers.resolve(onlineCPUs: onlineCPUs, debug: settings.debug)
        let previous = current.workers.resolve(onlineCPUs: onlineCPUs, debug: current.debug)
        // A count set at run time (hyperglassctl workers N) survives unless the configured count changed.
        let count = configured == previous ? nil : configured
        let effective = count ?? runningCount
        guard effective <= settings.maxWorkers else {
            throw ConfigError(location: "max_workers", message: "\(effective) workers would exceed max_workers (\(settings.maxWorkers)); raise max_workers or lower the count first")
        }
        var needRestart: [String] = []
        if settings.bind != current.bind { needRestart.append("bind") }
        if settings.controlSocket != current.controlSocket { needRestart.append("control_socket") }
        if settings.controlGroup != current.controlGroup { needRestart.append("control_group") }
        if settings.debug != current.debug { needRestart.append("debug") }
        if settings.metricsBind != current.metricsBind { needRestart.append("metrics_bind") }
        pending = (rollID, settings)
        return Plan(settings: settings, count: count, needRestart: needRestart)
    }

    /// A roll ended: a successful reload's settings are now the ones in effect; a failed one's never were.
    mutating func rollEnded(_ outcome: RollOutcome) {
        guard let pending, pending.rollID == outcome.id else { return }
        if outcome.succeeded { current = pending.settings }
        self.pending = nil
    }
}
