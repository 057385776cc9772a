/// What one look in /proc found for a starting worker (`readiness = accepting`).
public enum AcceptingSample: Equatable, Sendable {
    /// Its process tree accepts on a listening socket: where and how, in an operator's words.
    case accepting(String)
    case notYet
    /// /proc could not tell (the process is gone, or not readable): why.
    case unknown(String)
}

/// How a worker came to count as ready, and when readiness is next looked for.
public struct WorkerReadiness: Equatable, Sendable {
    /// "accepting on fd 3 (127.0.0.1:8001): in an epoll set of the worker", "READY=1", "exec succeeded".
    public internal(set) var evidence: String? = nil
    /// When the next /proc sample is due (`accepting` only, and only until the worker is ready).
    public internal(set) var sampleDue: Instant? = nil
    /// Samples taken so far, and the last thing /proc could not tell, for the ready-timeout message.
    public internal(set) var samples = 0
    public internal(set) var lastProblem: String? = nil
}

/// Readiness: how a starting worker becomes ready, the /proc sampling schedule of `accepting`, and the
/// settle period (`min_ready`) a roll's successor must stay ready before its predecessor drains.
extension Pool {
    /// Samples come every 50 ms at first, then every tenth of the worker's age (a late start is seen at most
    /// 10 % late), at most every 500 ms; with many workers starting at once, no more often than 10 ms per
    /// starting worker, so a pool of 64 starting together costs the loop a few percent of one core.
    func sampleInterval(startedAt: Instant, at now: Instant) -> Duration {
        let starting = workers.values.count { $0.readyAt == nil && !$0.isStopping }
        let byAge = max(.milliseconds(50), min(.milliseconds(500), (now - startedAt) / 10))
        return max(byAge, .milliseconds(10) * starting)
    }

    /// A freshly exec'd worker's readiness: ready at once for `exec`, a first sample due for `accepting`.
    func initialReadiness(of worker: inout WorkerProcess, at now: Instant) {
        switch policy.readiness {
        case .exec:
            worker.readyAt = now
            worker.readiness.evidence = "exec succeeded (readiness exec)"
        case .accepting:
            worker.readiness.sampleDue = now + .milliseconds(50)
        case .notify, .http:
            break
        }
    }

    /// Marks a worker ready with its evidence; a roll's successor then settles, or takes over at once.
    mutating func becameReady(_ pid: Int32, evidence: String, at now: Instant) -> [Action] {
        guard var worker = workers[pid], worker.readyAt == nil, !worker.isStopping else { return [] }
        worker.readyAt = now
        worker.readiness.evidence = evidence
        worker.readiness.sampleDue = nil
        workers[pid] = worker
        var actions: [Action] = [.report(PoolEvent(.ready, .info, "worker \(worker.slot) ready (pid \(pid), \((now - worker.startedAt).spoken) after start): \(evidence)",
                                                   slot: worker.slot, pid: pid, generation: worker.generation))]
        if slots.indices.contains(worker.slot), slots[worker.slot].successor?.pid == pid {
            actions += promote(worker.slot, at: now)
        }
        return actions
    }

    mutating func acceptingSampled(_ pid: Int32, _ sample: AcceptingSample, at now: Instant) -> [Action] {
        guard var worker = workers[pid], worker.readyAt == nil, !worker.isStopping, policy.readiness == .accepting else { return [] }
        worker.readiness.samples += 1
        switch sample {
        case .accepting(let evidence):
            workers[pid] = worker
            return becameReady(pid, evidence: evidence, at: now)
        case .notYet:
            worker.readiness.sampleDue = now + sampleInterval(startedAt: worker.startedAt, at: now)
        case .unknown(let problem):
            // Said once per worker: the exit event or the ready timeout will settle its fate.
            let first = worker.readiness.lastProblem == nil
            worker.readiness.lastProblem = problem
            worker.readiness.sampleDue = now + sampleInterval(startedAt: worker.startedAt, at: now)
            workers[pid] = worker
            return first ? [.log(.debug, "worker \(worker.slot) (pid \(pid)): cannot tell from /proc whether it accepts: \(problem)")] : []
        }
        workers[pid] = worker
        return []
    }

    /// When the settle period of slot `id`'s ready successor ends; nil when it has none waiting.
    /// Only a roll settles: a successor replacing an unhealthy worker outside one takes over once ready.
    func settleEnd(_ id: Int) -> Instant? {
        guard policy.minReady > .zero, roll?.active.contains(id) == true, slots.indices.contains(id),
              let pid = slots[id].successor?.pid, let worker = workers[pid], worker.isReady, let readyAt = worker.readyAt else { return nil }
        return readyAt + policy.minReady
    }

    /// When the worker `pid`, a roll's ready successor, takes over; nil unless it is settling.
    public func settlingUntil(_ pid: Int32) -> Instant? {
        guard let worker = workers[pid], slots.indices.contains(worker.slot), slots[worker.slot].successor?.pid == pid else { return nil }
        return settleEnd(worker.slot)
    }

    /// Whether a ready successor must still wait before it takes over (and its predecessor drains).
    /// A predecessor found unhealthy meanwhile is not worth waiting for: it drains at the next promotion
    /// attempt, at the latest when the settle deadline fires.
    func mustSettle(_ id: Int, at now: Instant) -> Bool {
        guard let end = settleEnd(id), now < end else { return false }
        return slots[id].pid.flatMap { workers[$0]?.health.verdict } == nil
    }

    /// Why a worker that exited was a failed start, or nil if it had been ready past the settle period:
    /// "exit status 0 before ready (it had not accepted on its listening sockets)", "exit status 3 400ms
    /// after it was ready, within min_ready (2s)". An exit 0 nobody asked for counts like any other.
    func failedStartReason(_ worker: WorkerProcess, _ status: ExitStatus, at now: Instant) -> String? {
        guard let readyAt = worker.readyAt else { return "\(worker.killReason ?? status.description) before ready\(notReadyDetail(worker))" }
        if let reason = worker.killReason { return reason }
        guard now - readyAt < policy.minReady else { return nil }
        return "\(status) \((now - readyAt).spoken) after it was ready, within min_ready (\(policy.minReady.spoken))"
    }

    /// What `accepting` adds to "before ready" and "not ready within": what /proc did (not) show.
    func notReadyDetail(_ worker: WorkerProcess) -> String {
        guard policy.readiness == .accepting, worker.killReason == nil else { return "" }
        return " (it had not accepted on its listening sockets" + (worker.readiness.lastProblem.map { "; /proc: \($0)" } ?? "") + ")"
    }

    /// Kills a worker whose ready timeout has passed: SIGKILL, and the verdict kept for its exit.
    mutating func expireReadyTimeout(_ pid: Int32, at now: Instant) -> [Action] {
        guard let worker = workers[pid], !worker.killed, readyTimeoutApplies(worker), worker.startedAt + policy.readyTimeout <= now else { return [] }
        let (verdict, detail) = notReadyWithin(worker)
        workers[pid]?.killed = true
        workers[pid]?.killReason = verdict + detail
        workers[pid]?.killCause = .readyTimeout
        return [.report(PoolEvent(.killed, .warning, "worker \(worker.slot) (pid \(pid)) was \(verdict) (ready_timeout)\(detail); killing it",
                                  slot: worker.slot, pid: pid, generation: worker.generation, reason: .readyTimeout)),
                .signal(pid: pid, .kill)]
    }

    /// After the settings changed (a reload, or back from a failed one), ready timeouts that are already
    /// over under the new ones are acted on now, not left as a deadline in the past.
    mutating func expireReadyTimeouts(at now: Instant) -> [Action] {
        workers.keys.sorted().flatMap { expireReadyTimeout($0, at: now) }
    }

    /// The ready-timeout verdict: "not ready within 1m", and in `accepting` mode what /proc showed.
    func notReadyWithin(_ worker: WorkerProcess) -> (verdict: String, detail: String) {
        let detail = policy.readiness == .accepting
            ? ": it never accepted on its listening sockets" + (worker.readiness.lastProblem.map { " (/proc: \($0))" } ?? "")
            : ""
        return ("not ready within \(policy.readyTimeout.spoken)", detail)
    }
}
