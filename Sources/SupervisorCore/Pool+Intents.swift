import ControlProtocol

/// Operator requests (`hyperglassctl`, SIGHUP, SIGTTIN, SIGTTOU): one admission rule for every way of
/// asking, and one answer. The shell parses, dispatches `requested` and writes the `Reply` it gets back.
extension Pool {
    /// Why `intent` may not happen now; nil when it may. Nothing is admitted once the stop began (a lame
    /// duck is on its way out: new workers would be drained moments later), rolls never interleave, and a
    /// count must fit 1...max_workers.
    public func refusal(of intent: Intent, at now: Instant) -> String? {
        switch phase {
        case .stopping, .exited:
            return "cannot \(intent.verb): the supervisor is stopping"
        case .lameDuck(let until):
            let left = max(0, Int((until - now).seconds.rounded(.up)))
            return "cannot \(intent.verb): the supervisor is stopping (lame duck: draining in \(left) s)"
        case .starting, .running:
            break
        }
        // Whoever asked first is served first: a change made while the preflight runs would refuse the upgrade
        // at its answer (a worker starting or draining), and a second upgrade would race the first.
        if let preparing = upgradePreparation { return preparing.refusal(of: intent, at: now) }
        switch intent {
        case .workers(let change):
            let target = change.applied(to: desired)
            guard (1...policy.maxWorkers).contains(target) else {
                return "\(target) workers is out of range: the count must be from 1 to \(policy.settings.maxWorkersInWords)"
            }
            if target > desired, let waiting = slotWaitingForResources {
                return "not scaling \(desired) → \(target): worker \(waiting.id) could not start for want of resources (\(waiting.lastFailure ?? "a resource limit")); the pool grows again once it runs"
            }
        case .autoscale:
            if autoscaler == nil {
                return "autoscaling is off; set workers = auto:MIN-MAX in the configuration (e.g. auto:1-16) to turn it on"
            }
        case .restart(let ids):
            if let missing = ids?.first(where: { !slots.indices.contains($0) }) {
                return "there is no worker \(missing): the workers are 0 to \(desired - 1)"
            }
            if let roll { return Self.busy(.restart, roll) }
        case .reload:
            if let roll { return Self.busy(.reload, roll) }
        case .upgrade:
            if let refusal = upgradeRefusal { return refusal }
        }
        return nil
    }

    private static func busy(_ kind: Roll.Kind, _ roll: Roll) -> String {
        "cannot \(kind) now: a \(roll.kind) is in progress (\(roll.done)/\(roll.total) workers replaced); try again when it has finished"
    }

    mutating func requested(_ intent: Intent, by requester: Requester, at now: Instant) -> [Action] {
        if let refusal = refusal(of: intent, at: now) { return answer(requester, .refused(refusal)) }
        switch intent {
        case .workers(let change):
            let previous = desired
            let target = change.applied(to: previous)
            // With autoscaling on, the operator's count holds until `workers auto`.
            let actions = pinAutoscaling(at: target, at: now) + scale(to: target, at: now)
            return actions + answer(requester, .workers(previous: previous, desired: target))
        case .autoscale:
            return resumeAutoscaling(by: requester, at: now)
        case .reload:
            // Reading the files is the shell's part; `configurationRead` continues here.
            let said: [Action] = if case .signal(let signal) = requester {
                [.log(.notice, "\(SignalName.of(signal.rawValue)): reloading the configuration")]
            } else { [] }
            return said + [.readConfiguration(for: requester)]
        case .restart(let ids):
            let actions = beginRoll(.restart, release: release, slots: ids ?? slots.map(\.id), at: now)
            return actions + answer(requester, rollReply())
        case let .upgrade(path, wait):
            return prepareUpgrade(path: path, wait: wait, by: requester, at: now)
        }
    }

    /// The configuration a reload asked for is read and valid: number its release and roll onto it.
    mutating func configurationRead(_ plan: ReloadPlan, autoscaler fresh: Autoscaler?, memoryCeiling ceiling: Int?,
                                    for requester: Requester, at now: Instant) -> [Action] {
        // Asked again: a stop signal read in the same turn may have come first.
        if let refusal = refusal(of: .reload, at: now) { return answer(requester, .refused(refusal)) }
        var actions: [Action] = plan.note.map { [.log(.warning, "reload: " + $0)] } ?? []
        actions += reconfigureAutoscaling(fresh, memoryCeiling: ceiling, at: now)
        var newPolicy = policy
        newPolicy.settings = plan.settings
        actions += reload(to: releases.next, policy: newPolicy, count: plan.count, note: plan.note, at: now)
        return actions + answer(requester, rollReply())
    }

    /// The configuration a reload asked for is invalid: nothing changes; status and `--wait` hear why.
    mutating func configurationRejected(_ reason: String, for requester: Requester, at now: Instant) -> [Action] {
        if let refusal = refusal(of: .reload, at: now) { return answer(requester, .refused(refusal)) }
        let actions = reloadRejected(reason)
        // The rejection is logged already; a signal needs no second line.
        guard case .client = requester, let outcome = lastRoll else { return actions }
        return actions + answer(requester, .refused(outcome.summary))
    }

    /// The roll just admitted: begun, or (nothing to replace) already ended.
    private func rollReply() -> Reply {
        if let roll, roll.id == rollSerial {
            let what = "\(roll.kind.rawValue) started: \(roll.total) worker\(roll.total == 1 ? "" : "s") to replace"
            return .rollStarted(id: roll.id, summary: what, note: roll.note)
        }
        guard let lastRoll, lastRoll.id == rollSerial else { preconditionFailure("an admitted roll begins, or ends at once") }
        return .rollEnded(lastRoll)
    }

    /// The reply to a client; a signal's refusal goes to the log (its success reports itself: scaled, roll-started).
    func answer(_ requester: Requester, _ reply: Reply) -> [Action] {
        switch requester {
        case .client(let fd): return [.reply(to: fd, reply)]
        case .signal(let signal):
            guard case .refused(let reason) = reply else { return [] }
            return [.log(.warning, "\(SignalName.of(signal.rawValue)): \(reason)")]
        }
    }
}
