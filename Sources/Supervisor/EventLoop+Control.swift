import ControlProtocol
import SupervisorCore

/// Control requests: each line from a client is parsed, read-only ones are answered from the pool's state,
/// and every other one goes to the core as an intent (`Pool+Intents.swift`), whose `Reply` is written now,
/// or later (`--wait`).
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
        // Every request that changes the pool is the core's to decide.
        if let (intent, wait) = request.intent { return decide(intent, from: fd, wait: wait, progress: request.followsProgress) }
        switch request {
        case .ping: return ControlReply.success([("pong", .bool(true))])
        case .version: return ControlReply.success([("version", .string(version)), ("protocol", .number(Double(ControlRequest.protocolVersion)))])
        case .status:
            lookAtBacklog()
            let report = StatusReport.json(pool: pool, startedAt: startedAt, now: Sys.now)
            guard case .object(let members) = report else { return report }
            return .object(members + [("autoscaling", autoscalingJSON)])
        case .metrics: return ControlReply.success([("text", .string(metricsText()))])
        case .events: return follow(from: fd)
        case .getWorkers:
            return ControlReply.success([("desired", .number(Double(pool.desired))), ("ready", .number(Double(pool.readyCount)))])
        case .setWorkers, .resumeAutoscaling, .reload, .restart, .upgrade: preconditionFailure("decided by the core above")
        }
    }

    /// Hands the intent to the core and turns its reply into JSON (or a wait for the outcome).
    private func decide(_ intent: Intent, from fd: Int32, wait: Bool, progress: Bool = false) -> JSON? {
        deciding = true
        dispatch(.requested(intent, by: .client(fd)))
        deciding = false
        guard let reply = replies.removeValue(forKey: fd) else {
            preconditionFailure("the core answers every intent it is given")
        }
        deliverLateReplies()
        switch reply {
        case let .workers(_, desired) where wait: return replyLater(.count(desired), by: fd)
        case let .rollStarted(id, _, _) where wait: return replyLater(.roll(id, progress: progress), by: fd)
        case .upgradePreparing:
            // The answer comes when the check has: a refusal, or the exec's (EventLoop+UpgradeCheck.swift).
            control.markAwaiting(fd, until: Sys.now + ControlServer.waitTimeout)
            lateRequesters[fd] = control.clients[fd]
            return nil
        default: return json(of: reply)
        }
    }

    /// A reply as the client reads it.
    private func json(of reply: Reply) -> JSON {
        switch reply {
        case .refused(let reason): return ControlReply.failure(reason)
        case let .workers(previous, desired):
            return ControlReply.success([("previous", .number(Double(previous))), ("desired", .number(Double(desired)))])
        case let .autoscaling(previous, desired, summary):
            return ControlReply.success([("previous", .number(Double(previous))), ("desired", .number(Double(desired))),
                                         ("autoscaling", .string(summary))])
        case let .rollStarted(_, summary, note):
            return ControlReply.success([("summary", .string(summary))] + (note.map { [("note", .string($0))] } ?? []))
        case .rollEnded(let outcome): return rollReply(outcome)
        case .upgradePreparing: return ControlReply.success([("summary", .string("the upgrade is being prepared"))])
        }
    }

    /// Sends the replies the core gave outside a request's own dispatch (an upgrade refused after its check,
    /// or abandoned by a stop) to the connections that are still the ones that asked.
    func deliverLateReplies() {
        guard !replies.isEmpty else { return }
        for (fd, reply) in replies.sorted(by: { $0.key < $1.key }) {
            let expected = lateRequesters.removeValue(forKey: fd)
            guard let connection = control.clients[fd], connection === expected else {
                log(.info, "a reply to control connection \(fd), which has gone, was dropped")
                continue
            }
            control.reply(to: fd, json(of: reply), answersWait: true, at: Sys.now)
        }
        replies.removeAll()
    }

    private func replyLater(_ awaited: Awaited, by fd: Int32) -> JSON? {
        control.markAwaiting(fd, until: Sys.now + ControlServer.waitTimeout)
        waiters.append((fd, awaited))
        // The roll as it stands now, so the client shows something at once; later steps follow in answerWaiters.
        if case .roll(let id, true) = awaited, let progress = pool.rollProgress, progress.id == id {
            shownProgress = progress
            control.reply(to: fd, Self.progressLine(progress), at: Sys.now)
        }
        answerWaiters()
        return nil
    }

    /// One step of a roll for a `--wait` client: no "ok", so the client knows the reply is still to come.
    static func progressLine(_ progress: RollProgress) -> JSON {
        .object([("progress", .object([("kind", .string(progress.kind.rawValue)), ("total", .number(Double(progress.total))),
                                        ("done", .number(Double(progress.done))), ("starting", .number(Double(progress.starting))),
                                        ("settling", .number(Double(progress.settling))), ("failed", .number(Double(progress.failed)))])),
                 ("summary", .string(progress.summary))])
    }

    /// Sends the roll's new step to the clients that asked to follow it.
    private func sendProgress() {
        let progress = pool.rollProgress
        guard progress != shownProgress else { return }
        shownProgress = progress
        guard let progress else { return }
        for waiter in waiters {
            guard case .roll(let id, true) = waiter.awaited, id == progress.id else { continue }
            control.reply(to: waiter.fd, Self.progressLine(progress), at: Sys.now)
        }
    }

    private func rollReply(_ outcome: RollOutcome) -> JSON {
        guard outcome.succeeded else { return ControlReply.failure(outcome.summary) }
        return ControlReply.success([("summary", .string(outcome.summary))] + (outcome.note.map { [("note", .string($0))] } ?? []))
    }

    func answerWaiters() {
        guard !waiters.isEmpty else { return }
        sendProgress()
        waiters.removeAll { waiter in
            guard control.isOpen(waiter.fd) else { return true }
            guard let reply = reply(awaiting: waiter.awaited) else { return false }
            control.reply(to: waiter.fd, reply, answersWait: true, at: Sys.now)
            return true
        }
    }

    /// The deferred reply, once there is one.
    private func reply(awaiting awaited: Awaited) -> JSON? {
        if case .roll(let id, _) = awaited, let outcome = pool.lastRoll, outcome.id == id { return rollReply(outcome) }
        if case .stopping = pool.phase { return ControlReply.failure("the supervisor is stopping") }
        switch awaited {
        case .roll: return nil
        case .count(let target):
            if pool.desired != target { return ControlReply.failure("the worker count was changed to \(pool.desired) by another request") }
            if let failure = pool.countWaitFailure { return ControlReply.failure(failure) }
            guard pool.isSettled else { return nil }
            return ControlReply.success([("desired", .number(Double(pool.desired))), ("ready", .number(Double(pool.readyCount)))])
        }
    }
}
