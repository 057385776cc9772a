import SupervisorCore

/// Re-reads the configuration for a reload the way `start` read it (same flags, same environment);
/// what of it a running supervisor applies, and in which order, is the core's `ReloadPlan`.
struct Reloader {
    let invocation: Invocation
    let environment: [String: String]
    let onlineCPUs: Int
    /// The limits measured at start: a reloaded count they cannot hold is capped as at start.
    let limits: ResourceLimits
    /// The configuration file `start` read, if any: a reload reads that one or refuses.
    let startedFrom: String?

    /// Loads and validates; the error says what is wrong and where, and nothing has changed yet.
    func load(inEffect: Settings, runningCount: Int) throws(ConfigError) -> ReloadPlan {
        let loaded = try Configuration.load(invocation, environment: environment, startedFrom: startedFrom).settings
        let (settings, capacityNote) = limits.capped(loaded)
        var plan = try ReloadPlan(loaded: settings, inEffect: inEffect, runningCount: runningCount, onlineCPUs: onlineCPUs)
        // Said with the outcome only when it lowers the configured count or range, not a default max_workers.
        if settings.workers != loaded.workers { plan.capacityNote = capacityNote }
        return plan
    }
}
