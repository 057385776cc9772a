import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// The shell of autoscaling (`workers = auto:MIN-MAX`); the policy is `Autoscaler`, in the core.
/// Idle at the floor, the loop takes no samples: each listener is watched for one incoming connection
/// (EPOLLONESHOT), which starts sampling once a second (accept queues + workers' CPU); when the pool is
/// back at its floor and quiet, the listeners are watched again and the samples stop.
extension EventLoop {
    /// epoll data for a listener watched for load: this bit plus its fd.
    static let listenerTag: UInt64 = 1 << 35

    /// A reload's settings: a new range (or scale_down_delay, max_memory) applies from now on, keeping a
    /// pinned count; `workers = auto:MIN-MAX` added or removed turns autoscaling on or off.
    func reconfigureAutoscaling(_ settings: Settings) {
        memoryCeiling = LoadSampler.memoryCeiling(maxMemory: settings.health.maxMemory)
        guard var fresh = Autoscaler(settings: settings, onlineCPUs: CgroupLimits.cpuBudget().cpus) else {
            if autoscaler != nil { log(.notice, "autoscaling off: workers is no longer auto:MIN-MAX") }
            autoscaler = nil
            pool.scalingNote = nil
            return
        }
        if let old = autoscaler, old.policy == fresh.policy { return }
        if let pinned = autoscaler?.pinned { fresh.pin(pinned, current: pool.desired, at: Sys.now) }
        let wasOn = autoscaler != nil
        autoscaler = fresh
        pool.scalingNote = fresh.summary(current: pool.desired, memoryCeiling: memoryCeiling)
        loadSampler.reset()
        watchListenersForLoad(add: !listenersWatched)
        log(.notice, "autoscaling \(wasOn ? "now" : "on:") \(fresh.policy.floor)-\(fresh.policy.ceiling)")
    }

    /// Watches every listener for one connection (`add` the first time, re-armed after).
    func watchListenersForLoad(add: Bool) {
        listenersWatched = true
        for listener in listeners {
            _ = hg_epoll_watch_once(epoll, listener.fd, EventLoop.listenerTag | UInt64(UInt32(bitPattern: listener.fd)), add ? 1 : 0)
        }
    }

    /// A connection arrived on a watched listener.
    func loadArrived() {
        guard var scaler = autoscaler else { return }
        let sampleNow = scaler.loadArrived(at: Sys.now)
        autoscaler = scaler
        if sampleNow { takeLoadSample() }
    }

    /// The timer fired: take the sample that is due, if any.
    func loadSampleDue(at now: Instant) {
        guard let due = autoscaler?.nextSampleAt, due <= now else { return }
        takeLoadSample()
    }

    /// Samples, lets the policy decide, applies its count, and goes back to watching when it rests.
    func takeLoadSample() {
        guard var scaler = autoscaler else { return }
        let now = Sys.now
        let live = pool.workers.values.filter { !$0.isStopping }
        // Starting = asked for, not exec'd yet (no pid, no backoff pending). Not "not ready": under `accepting`
        // readiness a sync worker busy with its first request is not seen accepting, yet it is no spare capacity.
        let sample = loadSampler.sample(listeners: listeners.map(\.fd), workers: live.map(\.pid),
                                        starting: pool.slots.count { $0.pid == nil && $0.restartAt == nil }, at: now)
        let target = scaler.sampled(sample, current: pool.desired, hold: scalingHold, memoryCeiling: memoryCeiling, at: now)
        let wasSampling = autoscaler?.mode == .sampling
        autoscaler = scaler
        if let target { applyScaling(to: target) }
        if scaler.mode == .waitingForLoad, wasSampling {
            loadSampler.reset()
            watchListenersForLoad(add: false)
        }
        armTimer()
    }

    /// Why the count must not change now, or nil. A pool still starting may grow: its first workers may
    /// never count as ready while a burst keeps them busy.
    var scalingHold: String? {
        if let roll = pool.roll { return "a \(roll.kind.rawValue) is running" }
        return pool.phase.isActive ? nil : "the supervisor is stopping"
    }

    func applyScaling(to target: Int) {
        guard let change = autoscaler?.lastChange else { return }
        log(.notice, "autoscaling \(change.from) → \(change.to): \(change.reason)")
        pool.scalingNote = autoscaler?.summary(current: target, memoryCeiling: memoryCeiling)
        dispatch(.desiredCountChanged(target))
    }

    /// `hyperglassctl workers N`, SIGTTIN, SIGTTOU: the operator's count wins until `workers auto`.
    func pinWorkers(_ count: Int) {
        guard var scaler = autoscaler else { return }
        let wasPinned = scaler.pinned != nil
        scaler.pin(count, current: pool.desired, at: Sys.now)
        autoscaler = scaler
        pool.scalingNote = scaler.summary(current: count, memoryCeiling: memoryCeiling)
        if !wasPinned { log(.notice, "autoscaling paused: the count is pinned at \(count) until 'hyperglassctl workers auto'") }
        // Sampling stops; a connection no longer needs to wake us.
        loadSampler.reset()
    }

    /// `hyperglassctl workers auto`.
    func resumeAutoscaling() -> JSON {
        guard var scaler = autoscaler else {
            return ControlReply.failure("autoscaling is off; set workers = auto:MIN-MAX in the configuration (e.g. auto:1-16) to turn it on")
        }
        if case .stopping = pool.phase { return ControlReply.failure("the supervisor is stopping") }
        let previous = pool.desired
        let target = scaler.resume(current: previous, memoryCeiling: memoryCeiling, at: Sys.now)
        autoscaler = scaler
        log(.notice, "autoscaling resumed (\(scaler.policy.floor)-\(scaler.ceiling(memoryCeiling: memoryCeiling)))")
        pool.scalingNote = scaler.summary(current: target ?? previous, memoryCeiling: memoryCeiling)
        if let target { dispatch(.desiredCountChanged(target)) }
        // Resuming counts as load: sample now and every second until the pool rests at its floor.
        takeLoadSample()
        return ControlReply.success([("previous", .number(Double(previous))), ("desired", .number(Double(pool.desired))),
                                     ("autoscaling", .string(scaler.summary(current: pool.desired, memoryCeiling: memoryCeiling)))])
    }

    /// The autoscaling part of `status --json`, null when autoscaling is off.
    var autoscalingJSON: JSON {
        guard let scaler = autoscaler else { return .null }
        var members: [(String, JSON)] = [
            ("min", .number(Double(scaler.policy.floor))),
            ("max", .number(Double(scaler.ceiling(memoryCeiling: memoryCeiling)))),
            ("configured_max", .number(Double(scaler.policy.ceiling))),
            ("current", .number(Double(pool.desired))),
            ("pinned", scaler.pinned.map { .number(Double($0)) } ?? .null),
            ("sampling", .bool(scaler.mode == .sampling && scaler.pinned == nil)),
            ("summary", .string(scaler.summary(current: pool.desired, memoryCeiling: memoryCeiling))),
        ]
        if let change = scaler.lastChange {
            members.append(("last_change", .object([("from", .number(Double(change.from))), ("to", .number(Double(change.to))),
                                                    ("seconds_ago", .number(((Sys.now - change.at).seconds * 10).rounded() / 10)),
                                                    ("reason", .string(change.reason))])))
        }
        return .object(members)
    }
}
