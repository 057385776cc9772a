/// The supervisor's own process limits, and how many workers they leave room for. Each worker costs the
/// supervisor descriptors (its notify socket for its whole life; while it starts, its exec-report pipe and
/// health socket; a probe connection) and at least one process. A count beyond that would not run: its
/// spawns fail with EMFILE or EAGAIN, which used to look like a crash loop (issue 25, item 4).
/// Pure: the shell reads the numbers (`ProcessLimits` in Sources/Supervisor), this decides.
public struct ResourceLimits: Equatable, Sendable {
    /// The soft RLIMIT_NOFILE after raising it to the hard one; nil: unlimited.
    public var openFiles: Int?
    /// Descriptors open before the first worker (listeners, control socket, epoll, journal...).
    public var openFilesInUse: Int
    /// Processes the supervisor's cgroup may still hold (`pids.max` − `pids.current`); nil: no limit known.
    public var processesLeft: Int?

    /// Descriptors the supervisor holds per worker, with the transient ones of a start counted.
    public static let filesPerWorker = 2
    /// Descriptors kept free for control and metrics clients, /proc reads and the successors of a roll.
    public static let filesReserve = 64
    /// Processes kept free for prestart, probes and the workers' own helpers.
    public static let processesReserve = 16

    public init(openFiles: Int?, openFilesInUse: Int, processesLeft: Int? = nil) {
        self.openFiles = openFiles
        self.openFilesInUse = openFilesInUse
        self.processesLeft = processesLeft
    }

    /// The largest pool these limits fit (at least 1, so the supervisor still starts and says why), with
    /// the reason in words; nil when no limit binds below 1024 workers (the most `max_workers` allows).
    public var workerCapacity: (count: Int, reason: String)? {
        var best: (count: Int, reason: String)? = nil
        if let limit = openFiles {
            let count = (limit - openFilesInUse - Self.filesReserve) / Self.filesPerWorker
            best = (max(1, count),
                    "the open-file limit (RLIMIT_NOFILE \(limit), \(openFilesInUse) in use) fits \(max(1, count)) workers at \(Self.filesPerWorker) descriptors each plus \(Self.filesReserve) in reserve; raise LimitNOFILE= (ulimit -n)")
        }
        if let left = processesLeft {
            let count = max(1, left - Self.processesReserve)
            if count < best?.count ?? Int.max {
                best = (count, "the process limit (cgroup pids.max, \(left) left) fits \(count) workers with \(Self.processesReserve) in reserve; raise TasksMax=")
            }
        }
        guard let best, best.count < 1024 else { return nil }
        return best
    }

    /// `settings` with `max_workers`, a fixed count and the autoscaling ceiling lowered to what fits, and
    /// what was lowered in words (nil when nothing was).
    public func capped(_ settings: Settings) -> (settings: Settings, note: String?) {
        guard let (capacity, reason) = workerCapacity, settings.maxWorkers > capacity else { return (settings, nil) }
        var capped = settings
        var lowered = ["max_workers \(settings.maxWorkers) → \(capacity)"]
        capped.maxWorkers = capacity
        capped.capacityLimit = reason
        switch settings.workers {
        case .fixed(let n) where n > capacity:
            capped.workers = .fixed(capacity)
            lowered.append("workers \(n) → \(capacity)")
        case .range(let range) where range.upperBound > capacity:
            capped.workers = .range(min(range.lowerBound, capacity)...capacity)
            lowered.append("autoscaling ceiling \(range.upperBound) → \(capacity)")
        default: break
        }
        return (capped, "capped \(lowered.joined(separator: ", ")): \(reason)")
    }
}

extension Settings {
    /// `max_workers` in a refusal: its value, and why it is lower than configured when a limit capped it.
    public var maxWorkersInWords: String {
        guard let capacityLimit else { return "max_workers (\(maxWorkers))" }
        return "\(maxWorkers), as \(capacityLimit)"
    }
}
