/// The configuration releases the pool may still need, by number: the one in effect, the one a reload
/// rolls onto, the one a failed reload falls back to, and any an old-release slot restarts on.
/// The pool owns this one value; the shell asks it what a `spawn` action's release runs.
public struct Releases: Equatable, Sendable {
    /// Release 1 is the configuration the supervisor started with.
    public private(set) var settings: [Int: Settings]
    /// The release new workers run: during a reload the new one, after a failed reload the previous one again.
    public internal(set) var current: Int
    private var highest: Int

    init(initial: Settings) {
        settings = [1: initial]
        current = 1
        highest = 1
    }

    /// The number the next reload's release gets.
    public var next: Int { highest + 1 }

    /// The settings in effect: what a reload compares the newly loaded configuration with.
    public var inEffect: Settings { settings[current]! }

    public subscript(number: Int) -> Settings? { settings[number] }

    /// Records a reload's release, forgetting those nothing uses any more.
    mutating func add(_ number: Int, _ new: Settings, keeping inUse: Set<Int>) {
        settings = settings.filter { inUse.contains($0.key) || $0.key == current }
        settings[number] = new
        highest = max(highest, number)
    }
}

/// What a reload applies, decided from the configuration just loaded and the one in effect: pure, so
/// the restart-needed rules and the worker count are tested without a running supervisor.
public struct ReloadPlan: Equatable, Sendable {
    public let settings: Settings
    /// The count to scale to, when the configured count changed; a count set at run time
    /// (`hyperglassctl workers N`) survives a reload that leaves `workers` alone.
    public let count: Int?
    /// Changed keys only a restart applies (`ConfigKey.reloadable`); the running supervisor keeps their value.
    public let needRestart: [String]

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
    }

    /// Said in the reply and the log when some change needs a restart.
    public var note: String? {
        needRestart.isEmpty ? nil
            : "\(needRestart.joined(separator: ", ")) changed, but only a restart applies that (systemctl restart hyperglass); kept the running value"
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
