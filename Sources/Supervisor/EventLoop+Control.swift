import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// Control requests: each line from a client becomes a reply now, or later (`--wait`), and reload
/// turns the re-read configuration into a release for the pool to roll onto.
extension EventLoop {
    /// Answers this turn's share of control requests (16, or 2 ms), then brings every
    /// client's epoll interest in step with what is left.
    func serveControlRequests() {
        let start = Sys.now
        for _ in 0..<ControlServer.linesPerTurn {
            guard Sys.now - start < ControlServer.timePerTurn, let (fd, line) = control.nextRequest(at: Sys.now) else { break }
            if let reply = answer(line, from: fd) { control.reply(to: fd, reply, at: Sys.now) }
        }
        control.settleAll()
        waiters.removeAll { !control.isOpen($0.fd) }
        armTimer()
    }

    /// The reply to one request line, or nil when it comes later (`--wait`).
    private func answer(_ line: String, from fd: Int32) -> JSON? {
        let request: ControlRequest
        do { request = try ControlRequest(line: line) } catch { return ControlReply.failure(error.message) }
        guard request.isReadOnly || control.role(of: fd) == .admin else {
            return ControlReply.failure("permission denied: members of control_group may only read status")
        }
        switch request {
        case .ping: return ControlReply.success([("pong", .bool(true))])
        case .version: return ControlReply.success([("version", .string(version)), ("protocol", .number(Double(ControlRequest.protocolVersion)))])
        case .status:
            let report = StatusReport.json(pool: pool, startedAt: startedAt, now: Sys.now)
            guard case .object(let members) = report else { return report }
            return .object(members + [("autoscaling", autoscalingJSON)])
        case .resumeAutoscaling: return resumeAutoscaling()
        case .metrics: return ControlReply.success([("text", .string(metricsText()))])
        case .events: return follow(from: fd)
        case .getWorkers:
            return ControlReply.success([("desired", .number(Double(pool.desired))), ("ready", .number(Double(pool.readyCount)))])
        case let .setWorkers(change, wait):
            if case .stopping = pool.phase { return ControlReply.failure("the supervisor is stopping") }
            let previous = pool.desired
            let target = change.applied(to: previous)
            guard (1...pool.policy.maxWorkers).contains(target) else {
                return ControlReply.failure("\(target) workers is out of range: the count must be from 1 to max_workers (\(pool.policy.maxWorkers))")
            }
            // With autoscaling on, the operator's count holds until `workers auto`.
            pinWorkers(target)
            dispatch(.desiredCountChanged(target))
            if wait { return replyLater(.count(target), by: fd) }
            return ControlReply.success([("previous", .number(Double(previous))), ("desired", .number(Double(target)))])
        case let .upgrade(path, wait):
            return upgrade(to: path, wait: wait, requester: fd)
        case let .reload(wait):
            switch reload() {
            case .failure(let refusal): return ControlReply.failure(refusal.message)
            case .success(let id): return wait ? replyLater(.roll(id), by: fd) : rollStarted(id)
            }
        case let .restart(target, wait):
            let ids: [Int]
            switch target {
            case .all: ids = Array(pool.slots.indices)
            case .worker(let id):
                guard pool.slots.indices.contains(id) else {
                    return ControlReply.failure("there is no worker \(id): the workers are 0 to \(pool.desired - 1)")
                }
                ids = [id]
            }
            if let refusal = pool.rollRefusal(.restart) { return ControlReply.failure(refusal) }
            let id = pool.nextRollID
            dispatch(.restartRequested(slots: ids))
            return wait ? replyLater(.roll(id), by: fd) : rollStarted(id)
        }
    }

    private func replyLater(_ awaited: Awaited, by fd: Int32) -> JSON? {
        control.markAwaiting(fd, until: Sys.now + ControlServer.waitTimeout)
        waiters.append((fd, awaited))
        answerWaiters()
        return nil
    }

    private func rollStarted(_ id: Int) -> JSON {
        if let outcome = pool.lastRoll, outcome.id == id { return rollReply(outcome) }
        let total = pool.roll?.total ?? 0
        let note = pool.roll?.note
        return ControlReply.success([("summary", .string("\(pool.roll?.kind.rawValue ?? "roll") started: \(total) worker\(total == 1 ? "" : "s") to replace"))]
                                    + (note.map { [("note", .string($0))] } ?? []))
    }

    private func rollReply(_ outcome: RollOutcome) -> JSON {
        guard outcome.succeeded else { return ControlReply.failure(outcome.summary) }
        return ControlReply.success([("summary", .string(outcome.summary))] + (outcome.note.map { [("note", .string($0))] } ?? []))
    }

    /// Re-reads the configuration and starts the roll onto it; the roll's id, or why nothing happened.
    func reload() -> Result<Int, ControlError> {
        if let refusal = pool.rollRefusal(.reload) { return .failure(ControlError(refusal)) }
        let plan: ReloadPlan
        do {
            plan = try reloader.load(inEffect: pool.releases.inEffect, runningCount: pool.desired)
        } catch {
            dispatch(.reloadRejected(reason: error.description))
            return .failure(ControlError(pool.lastRoll?.summary ?? error.description))
        }
        if let note = plan.note { log(.warning, "reload: " + note) }
        reconfigureAutoscaling(plan.settings)
        let id = pool.nextRollID
        var policy = pool.policy
        policy.settings = plan.settings
        dispatch(.reloadRequested(release: pool.releases.next, policy: policy, count: plan.count, note: plan.note))
        return .success(id)
    }

    func answerWaiters() {
        guard !waiters.isEmpty else { return }
        waiters.removeAll { waiter in
            guard control.isOpen(waiter.fd) else { return true }
            guard let reply = reply(awaiting: waiter.awaited) else { return false }
            control.reply(to: waiter.fd, reply, answersWait: true, at: Sys.now)
            return true
        }
    }

    /// The deferred reply, once there is one.
    private func reply(awaiting awaited: Awaited) -> JSON? {
        if case .roll(let id) = awaited, let outcome = pool.lastRoll, outcome.id == id { return rollReply(outcome) }
        if case .stopping = pool.phase { return ControlReply.failure("the supervisor is stopping") }
        switch awaited {
        case .roll: return nil
        case .count(let target):
            if pool.desired != target { return ControlReply.failure("the worker count was changed to \(pool.desired) by another request") }
            guard pool.isSettled else { return nil }
            return ControlReply.success([("desired", .number(Double(pool.desired))), ("ready", .number(Double(pool.readyCount)))])
        }
    }
}
