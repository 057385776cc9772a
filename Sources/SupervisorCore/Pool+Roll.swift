/// Rolling replacement: reload to a new release, restart in place, and rollback when a reload fails.
extension Pool {
    /// The id the next roll will get, so a caller can tell its roll's outcome from an earlier one's.
    public var nextRollID: Int { rollSerial + 1 }

    /// Rolls onto a new release, scaling around the roll as `ReloadPlan.steps` orders.
    mutating func reload(to newRelease: Int, policy newPolicy: PoolPolicy, count: Int?, note: String?, at now: Instant) -> [Action] {
        var actions: [Action] = []
        for step in ReloadPlan.steps(to: count, from: desired) {
            switch step {
            case .scale(let count): actions += scale(to: count, at: now)
            case .roll:
                let inUse = Set(slots.flatMap { [$0.release] + ($0.successor.map { [$0.release] } ?? []) } + workers.values.map(\.release))
                releases.add(newRelease, newPolicy.settings, keeping: inUse)
                adopt(newPolicy, at: now)
                actions += expireReadyTimeouts(at: now)
                actions += beginRoll(.reload, release: newRelease, slots: slots.map(\.id), note: note, at: now)
            }
        }
        return actions
    }

    /// A reload whose configuration did not validate: nothing changes, but status and waiters hear why.
    mutating func reloadRejected(_ reason: String) -> [Action] {
        rollSerial += 1
        let outcome = RollOutcome(id: rollSerial, kind: .reload, succeeded: false, summary: "reload refused, nothing changed: \(reason)")
        lastRoll = outcome
        // A failed reload that took no time: counted and reported like any other.
        return [.report(PoolEvent(.rollEnded, .error, outcome.summary, roll: .reload, succeeded: false, duration: .zero))]
    }

    mutating func beginRoll(_ kind: Roll.Kind, release target: Int, slots ids: [Int], note: String? = nil, at now: Instant) -> [Action] {
        precondition(roll == nil, "rolls never interleave: refusal(of:at:) admits one at a time")
        let ids = ids.filter { slots.indices.contains($0) }
        rollSerial += 1
        let previous = release
        release = target
        roll = Roll(id: rollSerial, kind: kind, release: target, fallback: previous, slots: ids, at: now)
        roll?.note = note
        let surge = policy.maxSurge.resolved(for: desired)
        var actions: [Action] = [.report(PoolEvent(.rollStarted, .notice, "\(kind == .reload ? "reload" : "restart") of \(ids.count) worker\(ids.count == 1 ? "" : "s") begins, up to \(surge) starting at once", roll: kind))]
        if kind == .reload { actions.append(.notifySystemd([.reloading(at: now)])) }
        return actions + advanceRoll(at: now)
    }

    /// Starts successors until `max_surge` are starting; ends the roll when every slot is done. A successor
    /// that is ready and settling serves already and no longer counts, so the next start overlaps its
    /// `min_ready`: a roll takes about workers / max_surge × start-up + min_ready, not workers × both.
    mutating func advanceRoll(at now: Instant) -> [Action] {
        guard var current = roll else { return [] }
        var actions: [Action] = []
        let surge = policy.maxSurge.resolved(for: desired)
        while current.active.count(where: countsAgainstSurge) < surge, !current.queue.isEmpty {
            let id = current.queue.removeFirst()
            current.active.insert(id)
            // A slot already replacing an unhealthy worker finishes that first; `promote` then goes on with the roll.
            if slots[id].successor != nil { continue }
            let target = current.kind == .restart ? slots[id].release : current.release
            let generation = newGeneration(for: id)
            slots[id].generation = generation
            slots[id].successor = Successor(generation: generation, release: target)
            // A slot waiting out a backoff gets its successor now instead.
            slots[id].restartAt = nil
            actions.append(.spawn(slot: id, generation: generation, release: target))
        }
        // systemd times a reload out at TimeoutStartSec= (90 s by default), and a roll of many workers can take
        // longer than that. Every new worker is ready or failed within ready_timeout of its start, and settled
        // min_ready later; the steps overlap, so the roll ends at most that long after its last start. Each
        // batch of starts tells systemd that much more time is needed: a roll that keeps progressing is never
        // failed, and a stuck one still fails at ready_timeout, which ends the roll.
        if current.kind != .restart, actions.contains(where: { if case .spawn = $0 { true } else { false } }) {
            let step = policy.readyTimeout + policy.minReady + .seconds(5)
            actions.append(.notifySystemd([.extendTimeout(step)]))
        }
        roll = current
        guard current.queue.isEmpty, current.active.isEmpty else { return actions }
        // A reload's new workers, serving alone now, must be seen taking connections first (Pool+Backlog.swift).
        if current.kind == .reload, policy.health.backlogWait > .zero {
            return actions + (current.provingUntil == nil ? beginProving(at: now) : [])
        }
        return actions + completeRoll(current, at: now)
    }

    /// Every slot of `current` is done: the roll ends with its report, and systemd hears the reload is over.
    mutating func completeRoll(_ current: Roll, at now: Instant) -> [Action] {
        let elapsed = (now - current.startedAt).spoken
        // Slots a scale-down removed left the roll unreplaced: the reply says what happened to them.
        let removed = current.total - current.done
        let what = "\(current.done) worker\(current.done == 1 ? "" : "s") replaced"
            + (removed > 0 ? ", \(removed) removed by a scale-down before \(removed == 1 ? "its" : "their") turn ended," : "")
        var actions: [Action]
        switch current.kind {
        case .rollback: actions = [endRoll(current, succeeded: false, summary: current.failure ?? "reload failed; kept the previous version", at: now)]
        case .reload: actions = [endRoll(current, succeeded: true, summary: "reload complete: \(what) in \(elapsed)", at: now)]
        case .restart: actions = [endRoll(current, succeeded: true, summary: "restart complete: \(what) in \(elapsed)", at: now)]
        }
        if current.kind != .restart { actions.append(.notifySystemd([.ready])) }
        return actions
    }

    /// Ends `finished` (status and `--wait` read `lastRoll`) and returns its `roll-ended` report, timed from
    /// its start (a rollback continues its reload's clock): every way a roll ends reports once.
    mutating func endRoll(_ finished: Roll, succeeded: Bool, summary: String, at now: Instant) -> Action {
        roll = nil
        let kind: Roll.Kind = finished.kind == .rollback ? .reload : finished.kind
        lastRoll = RollOutcome(id: finished.id, kind: kind, succeeded: succeeded, summary: summary, note: finished.note)
        return .report(PoolEvent(.rollEnded, succeeded ? .notice : .error, summary, roll: kind, succeeded: succeeded, duration: now - finished.startedAt))
    }

    mutating func successorSpawned(slot id: Int, pid: Int32, at now: Instant) -> [Action] {
        guard var successor = slots[id].successor else { return [] }
        successor.pid = pid
        slots[id].successor = successor
        let worker = newWorker(pid: pid, slot: id, generation: successor.generation, release: successor.release, at: now)
        workers[pid] = worker
        var actions: [Action] = [.report(PoolEvent(.spawned, .info, "worker \(id) generation \(successor.generation) started (pid \(pid))\(slots[id].pid.map { " beside pid \($0)" } ?? "")",
                                                   slot: id, pid: pid, generation: successor.generation))]
        if case .stopping = phase { return actions + stop(pid, at: now) }
        if worker.isReady { actions += promote(id, at: now) }
        return actions
    }

    /// The successor is ready: it takes over the slot and the previous worker drains.
    mutating func promote(_ id: Int, at now: Instant) -> [Action] {
        guard let successor = slots[id].successor, let pid = successor.pid else { return [] }
        // A successor that is ready stays ready for min_ready first (the settle deadline promotes it then).
        if mustSettle(id, at: now) {
            // Settling, it no longer counts against max_surge: the next successor starts now.
            return [.log(.info, "worker \(id): generation \(successor.generation) (pid \(pid)) ready; settling for \(policy.minReady.spoken) (min_ready) before it takes over")]
                + advanceRoll(at: now)
        }
        let previous = slots[id].pid
        slots[id].pid = pid
        slots[id].release = successor.release
        slots[id].successor = nil
        slots[id].restartAt = nil
        var actions: [Action] = []
        if let previous {
            actions.append(.log(.info, "worker \(id): generation \(successor.generation) (pid \(pid)) ready; draining pid \(previous)"))
            actions += stop(previous, at: now)
        }
        if var current = roll, current.active.contains(id) {
            let target = current.kind == .restart ? successor.release : current.release
            current.active.remove(id)
            if successor.release != target {
                // It replaced an unhealthy worker on the old release: the slot still needs its roll successor,
                // first in line, when max_surge lets it start.
                current.queue.insert(id, at: 0)
            } else {
                current.done += 1
            }
            roll = current
            actions += advanceRoll(at: now)
        }
        return actions
    }

    /// A successor died or was killed before it was ready: a reload rolls back; a restart or rollback stops there.
    mutating func successorFailed(_ id: Int, reason: String, cause: FailureReason, at now: Instant) -> [Action] {
        slots[id].successor = nil
        var actions: [Action] = []
        // If the slot's own worker is gone too, the slot restarts as after any failure.
        if slots[id].pid == nil, slots[id].restartAt == nil { actions += slotFailed(id, reason: reason, cause: cause, at: now) }
        // An unhealthy worker whose replacement failed is not kept: it goes the way of any failed worker.
        if let pid = slots[id].pid, let verdict = workers[pid]?.health.verdict { actions += kill(pid, reason: verdict, cause: workers[pid]?.health.verdictCause) }
        guard var current = roll, current.active.remove(id) != nil else { return actions }
        current.failed += 1
        let position = "worker \(id) (\(current.done + 1)/\(current.total))"
        // Every other new worker of the roll goes too; their predecessors were never asked to stop, so capacity
        // stays whole. One still starting serves nothing yet and is killed; a settling one serves already and
        // drains like any old worker, so the requests it holds are answered.
        for other in current.active.sorted() {
            if let pid = slots[other].successor?.pid {
                actions += isSettling(other) ? stop(pid, at: now) : kill(pid, reason: "\(current.kind) stopped")
            }
            slots[other].successor = nil
            if slots[other].pid == nil, slots[other].restartAt == nil { actions += slotFailed(other, reason: "\(current.kind) stopped", cause: cause, at: now) }
        }
        // With crash_loop = exit, one of those failures may have begun the stop, which ended the roll.
        guard phase.isActive else { return actions }
        switch current.kind {
        case .reload:
            actions += reloadFailed(current, message: "reload failed at \(position): \(reason); kept the previous version", at: now)
        case .restart:
            // Only a ready worker "keeps serving": a crash-looping slot's successor had no predecessor at all.
            let kept = slots[id].pid.flatMap { workers[$0] }?.isReady == true
            let message = "restart stopped at \(position): the new worker \(reason); "
                + (kept ? "the previous one keeps serving" : "no worker of that slot was serving, and it restarts as after any failure")
            actions.append(endRoll(current, succeeded: false, summary: message, at: now))
        case .rollback:
            let message = (current.failure ?? "reload failed") + "; rolling back \(position) failed too: \(reason)"
            actions.append(endRoll(current, succeeded: false, summary: message, at: now))
            actions.append(.notifySystemd([.ready]))
        }
        return actions
    }

    /// A reload failed part-way: the previous release is back in effect, and the slots that moved roll back
    /// to it (one outcome, under the reload's id and clock).
    mutating func reloadFailed(_ current: Roll, message: String, at now: Instant) -> [Action] {
        var actions: [Action] = []
        release = current.fallback
        // The previous version is its command and its settings: timeouts, health, readiness.
        if let previous = releases[current.fallback] {
            var restored = policy
            restored.settings = previous
            adopt(restored, at: now)
            actions += expireReadyTimeouts(at: now)
        }
        let moved = slots.filter { $0.release == current.release }.map(\.id)
        roll = nil
        if moved.isEmpty {
            actions.append(endRoll(current, succeeded: false, summary: message, at: now))
            actions.append(.notifySystemd([.ready]))
        } else {
            actions.append(.log(.error, message + "; rolling back \(moved.count) worker\(moved.count == 1 ? "" : "s")"))
            // The rollback keeps the reload's id and clock: one outcome, timed from the reload's start.
            roll = Roll(id: current.id, kind: .rollback, release: current.fallback, fallback: current.fallback, slots: moved,
                        at: current.startedAt, failure: message, failed: current.failed)
            roll?.note = current.note
            actions += advanceRoll(at: now)
        }
        return actions
    }

    /// Whether slot `id`'s successor takes one of `max_surge`'s places: until it is ready, and with `exec`
    /// readiness until it settled too (exec'd is not serving: N new workers would start, and import, at once).
    func countsAgainstSurge(_ id: Int) -> Bool { !isSettling(id) || policy.readiness == .exec }

    /// Whether slot `id`'s successor is ready and only waiting out `min_ready`.
    func isSettling(_ id: Int) -> Bool {
        guard slots.indices.contains(id), let pid = slots[id].successor?.pid else { return false }
        return workers[pid]?.isReady ?? false
    }

    /// Where the roll stands, for `reload --wait` and `STATUS=`; nil when none is running.
    public var rollProgress: RollProgress? {
        guard let roll else { return nil }
        let settling = roll.active.count { isSettling($0) }
        return RollProgress(id: roll.id, kind: roll.kind, total: roll.total, done: roll.done,
                            starting: roll.active.count - settling, settling: settling, failed: roll.failed, proving: roll.provingUntil != nil)
    }

    /// Scaling down removed slots: they leave the roll, counted neither done nor failed.
    mutating func forgetRemovedSlots(at now: Instant) -> [Action] {
        guard var current = roll else { return [] }
        current.queue.removeAll { $0 >= slots.count }
        current.active = current.active.filter { $0 < slots.count }
        roll = current
        return advanceRoll(at: now)
    }

    mutating func kill(_ pid: Int32, reason: String, cause: FailureReason? = nil) -> [Action] {
        guard var worker = workers[pid], !worker.killed else { return [] }
        worker.killed = true
        worker.killReason = reason
        worker.killCause = cause
        workers[pid] = worker
        return [.signal(pid: pid, .kill)]
    }
}
