/// What a reload applies, decided from the configuration just loaded and the one in effect: pure, so
/// the restart-needed rules and the worker count are tested without a running supervisor.
public struct ReloadPlan: Equatable, Sendable {
    public let settings: Settings
    /// The count to scale to, when the configured count changed; a count set at run time
    /// (`hyperglassctl workers N`) survives a reload that leaves `workers` alone.
    public let count: Int?
    /// Changed keys only a restart applies (`ConfigKey.reloadable`); the running supervisor keeps their value.
    public let needRestart: [String]
    /// Said in the reply and the log when some change needs a restart.
    public let note: String?

    public init(loaded: Settings, inEffect running: Settings, runningCount: Int, onlineCPUs: Int) throws(ConfigError) {
        let configured = loaded.workers.resolve(onlineCPUs: onlineCPUs, debug: loaded.debug)
        let previous = running.workers.resolve(onlineCPUs: onlineCPUs, debug: running.debug)
        count = configured == previous ? nil : configured
        let effective = count ?? runningCount
        guard effective <= loaded.maxWorkers else {
            throw ConfigError(location: "max_workers", message: "\(effective) workers would exceed max_workers (\(loaded.maxWorkers)); raise max_workers or lower the count first")
        }
        settings = loaded
        needRestart = loaded.restartNeeded(comparedTo: running)
        note = needRestart.isEmpty ? nil
            : "\(needRestart.joined(separator: ", ")) changed, but only a restart applies that (systemctl restart hyperglass); kept the running value"
    }

    /// A plan already decided (the core's tests).
    public init(settings: Settings, count: Int? = nil, note: String? = nil) {
        self.settings = settings
        self.count = count
        needRestart = []
        self.note = note
    }

    /// The steps of a reload from a pool of `desired` workers: shrink before the roll and grow after it,
    /// so no slot is replaced only to be removed, and no new slot starts on the old release.
    public func steps(from desired: Int) -> [ReloadStep] { Self.steps(to: count, from: desired) }

    static func steps(to count: Int?, from desired: Int) -> [ReloadStep] {
        guard let count, count != desired else { return [.roll] }
        return count < desired ? [.scale(count), .roll] : [.roll, .scale(count)]
    }
}

public enum ReloadStep: Equatable, Sendable {
    case scale(Int)
    case roll
}
