/// Autoscaling's place in the pool (`workers = auto:MIN-MAX`); the policy itself is `Autoscaler`. Idle at the
/// floor nothing is sampled: the shell watches the listeners for one connection (`watchForLoad` →
/// `loadArrived`), which starts a sample every second (`sampleLoad` → `loadSampled`) until the pool rests
/// at its floor again.
extension Pool {
    /// The autoscaler's one-line state (range, count, why it last changed), for STATUS= and status.
    public var scalingNote: String? { autoscaler?.summary(current: desired, memoryCeiling: memoryCeiling) }

    /// Why the autoscaler must hold the count now, or nil. A pool still starting may grow: its first
    /// workers may never count as ready while a burst keeps them busy. A lame duck is on its way out.
    var scalingHold: String? {
        if let roll { return "a \(roll.kind.rawValue) is running" }
        return phase.acceptsTraffic ? nil : "the supervisor is stopping"
    }

    /// When the next sample is due; nil while waiting for load, pinned, or a sample is being taken.
    var loadSampleDue: Instant? {
        guard phase.isActive, !loadSampleInFlight else { return nil }
        return autoscaler?.nextSampleAt
    }

    mutating func loadArrived(at now: Instant) -> [Action] {
        guard var scaler = autoscaler else { return [] }
        let sampleNow = scaler.loadArrived(at: now)
        autoscaler = scaler
        return sampleNow ? requestLoadSample() : []
    }

    mutating func requestLoadSample() -> [Action] {
        guard autoscaler != nil, !loadSampleInFlight else { return [] }
        loadSampleInFlight = true
        let live = workers.values.filter { !$0.isStopping }.map(\.pid).sorted()
        // Starting = asked for, not exec'd yet (no pid, no backoff pending). Not "not ready": under `accepting`
        // readiness a sync worker busy with its first request is not seen accepting, yet it is no spare capacity.
        return [.sampleLoad(workers: live, starting: slots.count { $0.pid == nil && $0.restartAt == nil })]
    }

    /// Lets the policy decide on a sample, applies its count, and goes back to watching when it rests.
    mutating func loadSampled(_ sample: LoadSample, at now: Instant) -> [Action] {
        loadSampleInFlight = false
        guard var scaler = autoscaler else { return [] }
        let wasSampling = scaler.mode == .sampling
        let target = scaler.sampled(sample, current: desired, hold: scalingHold, memoryCeiling: memoryCeiling, at: now)
        autoscaler = scaler
        var actions: [Action] = []
        if let target, let change = scaler.lastChange {
            actions.append(.log(.notice, "autoscaling \(change.from) → \(change.to): \(change.reason)"))
            actions += scale(to: target, at: now)
        }
        if scaler.mode == .waitingForLoad, wasSampling { actions.append(.watchForLoad) }
        return actions
    }

    /// `hyperglassctl workers N`, SIGTTIN, SIGTTOU: the operator's count wins until `workers auto`.
    mutating func pinAutoscaling(at count: Int, at now: Instant) -> [Action] {
        guard var scaler = autoscaler else { return [] }
        let wasPinned = scaler.pinned != nil
        scaler.pin(count, current: desired, at: now)
        autoscaler = scaler
        // Sampling stops; the next connection only finds the count pinned.
        var actions: [Action] = [.watchForLoad]
        if !wasPinned { actions.append(.log(.notice, "autoscaling paused: the count is pinned at \(count) until 'hyperglassctl workers auto'")) }
        return actions
    }

    /// `hyperglassctl workers auto` (admitted: autoscaling is on).
    mutating func resumeAutoscaling(by requester: Requester, at now: Instant) -> [Action] {
        guard var scaler = autoscaler else { preconditionFailure("admission refuses 'workers auto' with autoscaling off") }
        let previous = desired
        let target = scaler.resume(current: previous, memoryCeiling: memoryCeiling, at: now)
        autoscaler = scaler
        var actions: [Action] = [.log(.notice, "autoscaling resumed (\(scaler.policy.floor)-\(scaler.ceiling(memoryCeiling: memoryCeiling)))")]
        if let target { actions += scale(to: target, at: now) }
        actions += answer(requester, .autoscaling(previous: previous, desired: desired, summary: scalingNote ?? ""))
        // Resuming counts as load: sample now and every second until the pool rests at its floor.
        return actions + requestLoadSample()
    }

    /// A reload's autoscaler: a new range (or scale_down_delay, max_memory) applies from now on, keeping a
    /// pinned count; `workers = auto:MIN-MAX` added or removed turns autoscaling on or off.
    mutating func reconfigureAutoscaling(_ fresh: Autoscaler?, memoryCeiling ceiling: Int?, at now: Instant) -> [Action] {
        memoryCeiling = ceiling
        guard var fresh else {
            defer { autoscaler = nil }
            return autoscaler == nil ? [] : [.log(.notice, "autoscaling off: workers is no longer auto:MIN-MAX")]
        }
        if let old = autoscaler, old.policy == fresh.policy { return [] }
        if let pinned = autoscaler?.pinned { fresh.pin(pinned, current: desired, at: now) }
        let wasOn = autoscaler != nil
        autoscaler = fresh
        return [.watchForLoad, .log(.notice, "autoscaling \(wasOn ? "now" : "on:") \(fresh.policy.floor)-\(fresh.policy.ceiling)")]
    }
}
