/// What `/metrics` shows: the pool as the core sees it, plus what the shell read from /proc and the
/// sockets at the moment of the scrape. A value; rendering it is a pure function.
public struct MetricsSnapshot: Equatable, Sendable {
    /// One worker process (a slot's current worker, a successor, or a worker still draining).
    public struct WorkerSample: Equatable, Sendable {
        public var slot: Int
        public var pid: Int32
        public var state: String
        /// Seconds since its last WATCHDOG=1; nil when it never sent one.
        public var watchdogAge: Double?
        /// Filled in by the shell from /proc/PID/{status,stat}; nil when the process is gone.
        public var residentBytes: UInt64? = nil
        public var cpuSeconds: Double? = nil
    }

    public var version: String
    public var desired: Int
    /// Worker processes by state (ready, starting, draining) and slots waiting out a backoff.
    public var states: [String: Int]
    public var crashLooping: Int
    public var rollInProgress: Bool
    public var counters: PoolCounters
    public var workers: [WorkerSample]
    /// The listeners' accept queues, looked at for this scrape.
    public var listeners: [ListenerBacklog] = []
    /// The supervisor's own process: filled in by the shell.
    public var startTimeSeconds: Double? = nil
    public var residentBytes: UInt64? = nil
    public var cpuSeconds: Double? = nil

    /// The states every scrape shows, even at zero, so queries and alerts never see a series vanish.
    public static let stateNames = ["ready", "starting", "draining", "backoff"]

    /// The pool's part; the shell adds processes, listeners and its own figures.
    public init(pool: Pool, version: String, at now: Instant) {
        self.version = version
        desired = pool.desired
        var states = Dictionary(uniqueKeysWithValues: Self.stateNames.map { ($0, 0) })
        var workers: [WorkerSample] = []
        for worker in pool.workers.values.sorted(by: { ($0.slot, $0.pid) < ($1.slot, $1.pid) }) {
            // Aborting and killing workers are on their way out like draining ones.
            let state = worker.isStopping ? "draining" : worker.state
            states[state, default: 0] += 1
            workers.append(WorkerSample(slot: worker.slot, pid: worker.pid, state: state,
                                        watchdogAge: worker.health.lastWatchdogAt.map { (now - $0).seconds }))
        }
        states["backoff"] = pool.slots.count { $0.pid == nil && $0.successor == nil && $0.restartAt != nil }
        self.states = states
        self.workers = workers
        crashLooping = pool.crashLoopingSlots.count
        rollInProgress = pool.roll != nil
        counters = pool.counters
    }
}
