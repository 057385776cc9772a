/// How far and how fast autoscaling may move the worker count (`workers = auto:MIN-MAX`).
public struct AutoscalePolicy: Equatable, Sendable {
    /// Never fewer workers than this; the pool starts here and returns here when quiet.
    public var floor: Int
    /// Never more workers than this (and never more than the memory ceiling, when there is one).
    public var ceiling: Int
    /// Between two samples while the pool is loaded or above its floor. Idle at the floor: no samples.
    public var sampleInterval: Duration = .seconds(1)
    /// Between two scale-ups: new workers need a moment to start and drain the queue that called them.
    /// One sample interval: a burst's first connection adds a worker at once, the rest of it a second later.
    public var upCooldown: Duration = .seconds(1)
    /// Quiet time (nothing queued, CPU low) before the first scale-down; later steps come every third of it.
    public var downDelay: Duration = .seconds(30)
    /// A worker using this share of one CPU or more is busy (async workers never let a queue build up).
    public var cpuHigh = 0.8
    /// Below this share, with nothing queued, the pool counts as quiet.
    public var cpuLow = 0.3
    /// The share a CPU-driven scale-up aims for: count × share / target workers.
    public var cpuTarget = 0.6
    /// Online CPUs: more CPU-bound workers than CPUs add no throughput, so CPU alone never grows past them.
    public var cpus = 1

    public init(floor: Int, ceiling: Int) {
        precondition(floor >= 1 && floor <= ceiling, "the range was validated by the configuration")
        self.floor = floor
        self.ceiling = ceiling
    }
}

/// What the shell measured, without help from the workers.
public struct LoadSample: Equatable, Sendable {
    /// Connections waiting in the kernel's accept queues of the listening sockets, summed (TCP_INFO's
    /// tcpi_unacked on a TCP listener, sock_diag for a unix one). A connection waiting there found no free worker.
    public var queued: Int
    /// The workers' CPU time since the previous sample (/proc/PID/stat utime + stime), as their mean
    /// share of one CPU; nil for the first sample after a pause, which has nothing to compare with.
    public var cpu: Double?
    /// Workers asked for but not ready yet: they will take queued connections soon, so they are not
    /// asked for twice.
    public var starting: Int

    public init(queued: Int, cpu: Double? = nil, starting: Int = 0) {
        self.queued = queued
        self.cpu = cpu
        self.starting = starting
    }
}

/// A change of the worker count and why it happened, for `status` and STATUS=.
public struct ScalingChange: Equatable, Sendable {
    public let from: Int
    public let to: Int
    public let at: Instant
    public let reason: String
}

/// The autoscaling policy. Pure: the shell passes samples, the current count and the time in; it gets
/// the new count back. Grows at once by one worker per queued connection (or to bring CPU back to the
/// target), at most every `upCooldown` (1 s); shrinks only after `downDelay` of quiet, by half the surplus at a
/// time; holds during a roll or while pinned; a shrink the load proves premature makes the next wait
/// twice as long (up to 8 ×), so a load that comes and goes does not make the pool flap.
public struct Autoscaler: Equatable, Sendable {
    public enum Mode: Equatable, Sendable {
        /// At the floor with no load: no samples at all until a connection arrives (the shell watches
        /// the listeners for one).
        case waitingForLoad
        /// Sampling every `sampleInterval`.
        case sampling
    }

    public let policy: AutoscalePolicy
    /// The count an operator fixed with `hyperglassctl workers N`; autoscaling is paused until `workers auto`.
    public private(set) var pinned: Int? = nil
    public private(set) var mode: Mode = .waitingForLoad
    public private(set) var lastChange: ScalingChange? = nil
    var lastSampleAt: Instant? = nil
    /// The last sample that asked for more workers.
    var lastBusyAt: Instant? = nil
    var lastUpAt: Instant? = nil
    /// The last shrink, until the load has confirmed or refuted it.
    var unconfirmedDownAt: Instant? = nil
    var lastDownAt: Instant? = nil
    /// When the current stretch of sampling began (a connection arrived, autoscaling resumed).
    var samplingSince: Instant? = nil
    /// Multiplies `downDelay`; doubled by each premature shrink, back to 1 after a shrink that held.
    public private(set) var downDelayFactor = 1

    public init(policy: AutoscalePolicy) { self.policy = policy }

    /// When the shell should take the next sample; nil while waiting for load or pinned.
    public var nextSampleAt: Instant? {
        guard pinned == nil, mode == .sampling else { return nil }
        return lastSampleAt.map { $0 + policy.sampleInterval }
    }

    /// The effective ceiling: `ceiling`, lowered by the memory ceiling (max_memory × workers must fit),
    /// but never below the floor the operator asked for.
    public func ceiling(memoryCeiling: Int?) -> Int {
        max(policy.floor, min(policy.ceiling, memoryCeiling ?? Int.max))
    }

    /// A connection arrived on a listener while waiting for load: sample now, and from now on regularly.
    public mutating func loadArrived(at now: Instant) -> Bool {
        guard pinned == nil else { return false }
        if mode == .waitingForLoad {
            mode = .sampling
            lastSampleAt = nil
            samplingSince = now
        }
        return true
    }

    /// Feeds one sample; returns the new worker count, or nil to keep `current`.
    /// `hold` is why the count must not change now ("a roll is running"), nil when it may.
    public mutating func sampled(_ sample: LoadSample, current: Int, hold: String?, memoryCeiling: Int? = nil,
                                 at now: Instant) -> Int? {
        guard pinned == nil else { return nil }
        lastSampleAt = now
        mode = .sampling
        let ceiling = ceiling(memoryCeiling: memoryCeiling)
        let cpu = sample.cpu ?? 0
        // CPU-bound workers beyond the CPUs there are would only queue for a CPU instead of a worker.
        let roomForCPU = Double(current) * cpu < Double(policy.cpus) - 0.5
        let busyQueue = sample.queued > 0
        let busyCPU = cpu >= policy.cpuHigh && roomForCPU
        let quiet = !busyQueue && cpu < policy.cpuLow

        if let downAt = unconfirmedDownAt {
            if now - downAt >= policy.downDelay * downDelayFactor {
                // The last shrink held for a whole delay: the load is not flapping (any more).
                downDelayFactor = 1
                unconfirmedDownAt = nil
            } else if busyQueue || busyCPU {
                // The load came back within the delay: that shrink was premature; wait longer next time.
                downDelayFactor = min(downDelayFactor * 2, 8)
                unconfirmedDownAt = nil
            }
        }
        if busyQueue || busyCPU { lastBusyAt = now }
        guard hold == nil else { return nil }
        if current > ceiling {
            return change(current, to: ceiling, reason: "above the ceiling of \(ceiling)", at: now)
        }
        if current < policy.floor {
            return change(current, to: policy.floor, reason: "below the floor of \(policy.floor)", at: now)
        }
        if busyQueue || busyCPU {
            guard current < ceiling else { return nil }
            if let lastUpAt, now - lastUpAt < policy.upCooldown { return nil }
            var extra = sample.queued - sample.starting
            if busyCPU { extra = max(extra, Int((Double(current) * cpu / policy.cpuTarget).rounded(.up)) - current) }
            // The workers already starting will take what is queued.
            guard extra > 0 || busyCPU else { return nil }
            let target = min(ceiling, current + max(1, extra))
            let why = busyQueue
                ? "\(sample.queued) connection\(sample.queued == 1 ? "" : "s") waited in the accept queue"
                : "workers used \(Int((cpu * 100).rounded()))% CPU"
            lastUpAt = now
            return change(current, to: target, reason: why, at: now)
        }
        guard quiet else { return nil }
        if current == policy.floor {
            // Resting at the floor: no samples until a connection arrives (which also tells whether the
            // last shrink was premature).
            mode = .waitingForLoad
            return nil
        }
        let delay = policy.downDelay * downDelayFactor
        let quietSince = [lastBusyAt, lastUpAt, samplingSince].compactMap { $0 }.max()
        if let quietSince, now - quietSince < delay { return nil }
        if let lastDownAt, now - lastDownAt < policy.downDelay / 3 { return nil }
        let target = max(policy.floor, current - max(1, (current - policy.floor + 1) / 2))
        lastDownAt = now
        unconfirmedDownAt = now
        return change(current, to: target, reason: "quiet for \(delay.spoken): nothing queued, CPU below \(Int(policy.cpuLow * 100))%", at: now)
    }

    /// `hyperglassctl workers N`: fix the count and pause autoscaling (no samples) until `resume`.
    public mutating func pin(_ count: Int, current: Int, at now: Instant) {
        pinned = count
        mode = .waitingForLoad
        if count != current { lastChange = ScalingChange(from: current, to: count, at: now, reason: "pinned with hyperglassctl workers \(count)") }
    }

    /// `hyperglassctl workers auto`: autoscaling again from the current count; sample at once.
    /// Returns a count when the current one is outside the range.
    public mutating func resume(current: Int, memoryCeiling: Int? = nil, at now: Instant) -> Int? {
        pinned = nil
        mode = .sampling
        lastSampleAt = nil
        samplingSince = now
        let ceiling = ceiling(memoryCeiling: memoryCeiling)
        if current > ceiling { return change(current, to: ceiling, reason: "autoscaling resumed above the ceiling of \(ceiling)", at: now) }
        if current < policy.floor { return change(current, to: policy.floor, reason: "autoscaling resumed below the floor of \(policy.floor)", at: now) }
        return nil
    }

    private mutating func change(_ from: Int, to: Int, reason: String, at now: Instant) -> Int? {
        guard to != from else { return nil }
        lastChange = ScalingChange(from: from, to: to, at: now, reason: reason)
        return to
    }

    /// One line for `status` and STATUS=: "autoscaling 1-16, 4 workers (2 → 4 at 12s: 2 connections waited ...)".
    public func summary(current: Int, memoryCeiling: Int? = nil) -> String {
        let ceiling = ceiling(memoryCeiling: memoryCeiling)
        let range = "\(policy.floor)-\(ceiling)\(ceiling < policy.ceiling ? " (memory)" : "")"
        if let pinned { return "autoscaling \(range) paused: pinned at \(pinned) (hyperglassctl workers auto resumes)" }
        guard let lastChange else { return "autoscaling \(range)" }
        return "autoscaling \(range); last change \(lastChange.from) → \(lastChange.to): \(lastChange.reason)"
    }
}

extension Autoscaler {
    /// The autoscaler `workers = auto:MIN-MAX` asks for; nil when the count is fixed.
    public init?(settings: Settings, onlineCPUs: Int) {
        guard let range = settings.autoscaleRange else { return nil }
        var policy = AutoscalePolicy(floor: range.lowerBound, ceiling: range.upperBound)
        policy.downDelay = settings.scaleDownDelay
        policy.cpus = onlineCPUs
        self.init(policy: policy)
    }
}
