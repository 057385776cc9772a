import ControlProtocol

/// The pool's side of an in-place upgrade: when one may happen, the pool as a value to hand over,
/// and the pool rebuilt from that value in the new image.
public struct PoolSnapshot: Equatable, Sendable {
    /// The configuration release in effect (every worker runs it: no upgrade during a roll).
    public var release: Int
    public var rollSerial: Int
    public var slots: [Slot]
    public var workers: [WorkerProcess]
    public var counters: PoolCounters
    /// The highest generation of each slot removed by a scale-down, so a slot added again never reuses one.
    public var retiredGenerations: [Int: Int] = [:]
    /// How the last roll ended: `status` keeps showing a failed reload after an upgrade.
    public var lastRoll: RollOutcome? = nil

    public init(release: Int, rollSerial: Int, slots: [Slot], workers: [WorkerProcess], counters: PoolCounters,
                retiredGenerations: [Int: Int] = [:], lastRoll: RollOutcome? = nil) {
        self.lastRoll = lastRoll
        self.release = release
        self.rollSerial = rollSerial
        self.slots = slots
        self.workers = workers
        self.counters = counters
        self.retiredGenerations = retiredGenerations
    }
}

/// An upgrade admitted and waiting for its preflight (`PATH upgrade-check`, up to 5 s), which the shell runs
/// while the loop goes on serving: pings, status, reaping, restarts, watchdogs. Until the answer comes, the
/// pool has one admission rule more (`refusal(of:at:)`), and a stop abandons it.
public struct UpgradePreparation: Equatable, Sendable {
    /// The binary asked for; nil: the installed one (the shell resolves it).
    public let path: String?
    /// Whether the client waits for the new image's answer (`--wait`).
    public let wait: Bool
    public let requester: Requester
    public let since: Instant

    /// The binary in words, for replies and status.
    public var shown: String { path ?? "the installed hyperglass" }

    /// Why `intent` must not happen while this upgrade is prepared: first come, first served. A change to the
    /// pool (a reload, a restart, a new count) would make the pool not at rest when the answer comes, and
    /// refuse the upgrade asked first; a second upgrade would race the first. The wait is short (the check's
    /// timeout), so these are refused with when to try again rather than queued.
    func refusal(of intent: Intent, at now: Instant) -> String {
        let started = max(0, Int((now - since).seconds.rounded(.down)))
        if case .upgrade = intent {
            return "cannot upgrade: an upgrade to \(shown) is being prepared (its check started \(started) s ago); wait for its answer"
        }
        return "cannot \(intent.verb) now: an upgrade to \(shown) is being prepared (its check started \(started) s ago); try again in a few seconds"
    }
}

extension Pool {
    /// The upgrade is admitted: the shell checks the binary (`checkUpgrade`) while the loop serves; the client
    /// hears `upgradePreparing` (nothing yet), then a refusal or the exec's own reply.
    mutating func prepareUpgrade(path: String?, wait: Bool, by requester: Requester, at now: Instant) -> [Action] {
        upgradePreparation = UpgradePreparation(path: path, wait: wait, requester: requester, since: now)
        // A signal has no client to answer: the log says what it started.
        let said: [Action] = if case .signal(let signal) = requester {
            [.log(.notice, "\(signal.name): upgrading in place to the installed program (same pid and workers; there is no old master to stop afterwards)")]
        } else { [] }
        // The reply first: a check the shell refuses at once answers `upgradeFailed` in the same dispatch, and
        // its refusal must be the last word to the client.
        return said + answer(requester, .upgradePreparing) + [.checkUpgrade(path: path, for: requester)]
    }

    /// The preflight said yes. The pool may have changed while it ran (a worker crashed and is starting
    /// again, one draining): it is asked again whether it is at rest, and only then does the exec follow.
    mutating func upgradeChecked(path: String, newVersion: String, for requester: Requester) -> [Action] {
        guard let preparing = upgradePreparation, preparing.requester == requester else {
            // The shell drops a check when it is cancelled; an answer for none is its bug, and changes nothing.
            return [.log(.error, "internal: an upgrade check answered for no upgrade being prepared; ignored")]
        }
        upgradePreparation = nil
        if let refusal = upgradeRefusal { return [.log(.warning, "upgrade: \(refusal)")] + answer(requester, .refused(refusal)) }
        return [.execUpgrade(path: path, newVersion: newVersion, wait: preparing.wait, for: requester)]
    }

    /// The preflight or the exec failed: nothing changed, the client hears why.
    mutating func upgradeFailed(_ reason: String, for requester: Requester) -> [Action] {
        if upgradePreparation?.requester == requester { upgradePreparation = nil }
        // A signal's refusal is its log line already ("SIGUSR2: cannot upgrade: ...").
        guard case .client = requester else { return answer(requester, .refused(reason)) }
        return [.log(.warning, "upgrade: \(reason)")] + answer(requester, .refused(reason))
    }

    /// A stop began (a signal, a lame duck, crash_loop = exit) while the preflight ran: the stop wins, the
    /// check is ended, and the client hears that nothing changed.
    mutating func abandonUpgrade() -> [Action] {
        guard let preparing = upgradePreparation else { return [] }
        upgradePreparation = nil
        let reason = "upgrade abandoned: the supervisor is stopping; nothing changed"
        return [.cancelUpgradeCheck, .log(.notice, "upgrade to \(preparing.shown) abandoned: the supervisor is stopping")]
            + answer(preparing.requester, .refused(reason))
    }

    /// Why the supervisor cannot be replaced now, or nil when it can: only a pool at rest hands over, so
    /// the new image never inherits a roll, a drain or a lame duck half-way.
    public var upgradeRefusal: String? {
        switch phase {
        case .running: break
        case .starting:
            // "Once it is ready" may be never: a pool crash-looping from its start does not get there by waiting.
            if let looping = crashLoopingSlots.first {
                return "cannot upgrade while the pool is starting: worker \(looping.id) is crash-looping (last: \(looping.lastFailure ?? "unknown")); fix the workers, or restart the service to run the new program"
            }
            return "cannot upgrade while the pool is starting; try again once it is ready"
        case .lameDuck: return "cannot upgrade: the supervisor is stopping (lame duck; the drain follows)"
        case .stopping, .exited: return "cannot upgrade: the supervisor is stopping"
        }
        if let roll { return "cannot upgrade now: a \(roll.kind) is in progress (\(roll.done)/\(roll.total) workers replaced); try again when it has finished" }
        let draining = workers.values.filter(\.isStopping).count
        if draining > 0 { return "cannot upgrade now: \(draining) worker\(draining == 1 ? " is" : "s are") draining; try again when \(draining == 1 ? "it has" : "they have") exited" }
        if slots.contains(where: { $0.successor != nil }) { return "cannot upgrade now: a worker is being replaced; try again in a moment" }
        return nil
    }

    /// The pool as a value to hand over (valid only when `upgradeRefusal` is nil).
    public var snapshot: PoolSnapshot {
        PoolSnapshot(release: release, rollSerial: rollSerial, slots: slots,
                     workers: workers.values.sorted { $0.slot < $1.slot }, counters: counters, retiredGenerations: retiredGenerations,
                     lastRoll: lastRoll)
    }

    /// The pool the new image continues with: the same slots, workers, counts and counters, under `policy`
    /// (the configuration it loaded, checked equal to the one in effect before the handover). Health and
    /// readiness schedules start again from `now`; a worker's watchdog is armed again if it was armed.
    public init(restoring snapshot: PoolSnapshot, policy: PoolPolicy, at now: Instant, seed: UInt64 = 0x5EED,
                autoscaler: Autoscaler? = nil, memoryCeiling: Int? = nil, pinned: Int? = nil) {
        precondition(!snapshot.slots.isEmpty, "a state with no slots was refused when it was read")
        self.init(desired: min(snapshot.slots.count, policy.maxWorkers), policy: policy, seed: seed,
                  autoscaler: autoscaler, memoryCeiling: memoryCeiling)
        slots = snapshot.slots
        releases = Releases(restored: snapshot.release, settings: policy.settings)
        rollSerial = snapshot.rollSerial
        counters = snapshot.counters
        retiredGenerations = snapshot.retiredGenerations
        lastRoll = snapshot.lastRoll
        // The operator's pinned count holds across the upgrade, as it would across a reload.
        if let pinned, var scaler = self.autoscaler {
            scaler.pin(pinned, current: snapshot.slots.count, at: now)
            self.autoscaler = scaler
        }
        phase = .running
        allReadyLogged = true
        lastReadyAt = now
        // The shell sends WATCHDOG=1 with READY=1 on taking over; the next is an interval later.
        if let interval = policy.systemdWatchdogInterval { nextWatchdogPing = now + interval }
        if policy.health.maxMemory != nil { nextMemoryCheck = now + policy.health.memoryCheckInterval }
        for var worker in snapshot.workers {
            if worker.readyAt == nil { initialReadiness(of: &worker, at: now) }
            if worker.health.lastWatchdogAt != nil, let interval = worker.health.watchdogInterval {
                worker.health.watchdogDeadline = now + interval
            }
            if policy.health.probePath != nil, worker.readyAt != nil { worker.health.probeDue = now + policy.health.probeInterval }
            workers[worker.pid] = worker
        }
        for index in slots.indices {
            slots[index].release = snapshot.release
            // A slot whose worker was not carried (it died in the gap, or the state was cut) restarts at once.
            if let pid = slots[index].pid, workers[pid] == nil { slots[index].pid = nil; slots[index].restartAt = now }
        }
    }

    /// A worker the new image found gone without an exit status (reaped by someone else, or its pid reused):
    /// reported once as a crash, counted as a failure of its slot, and restarted at the next deadline.
    public mutating func forget(pid: Int32, at now: Instant) -> [Action] {
        guard let worker = workers.removeValue(forKey: pid), slots.indices.contains(worker.slot), slots[worker.slot].pid == pid else { return [] }
        let slot = worker.slot
        slots[slot].pid = nil
        slots[slot].restartAt = now
        slots[slot].failures += 1
        slots[slot].restarts += 1
        slots[slot].lastFailure = "vanished during the upgrade"
        let report = PoolEvent(.exited, .warning, "worker \(slot) (pid \(pid)) vanished during the upgrade, its exit status unknown; restarting it",
                               slot: slot, pid: pid, generation: worker.generation, reason: .crash)
        counters.record(report)
        return [.report(report)]
    }
}
