/// The core's timers as one table. `instant(of:)` says when each deadline is armed, `fire(_:at:)` what
/// happens when it passes; `nextDeadline` (when to wake) and `deadlinesPassed` (what is due) both walk
/// `armedDeadlines`, so they cannot disagree (a deadline due but never handled made the loop spin once).
/// A new timer is one `Deadline` case, one line in `instant(of:)`, one in `fire(_:at:)`, and its candidates.
extension Pool {
    /// Something the core wants to be woken for.
    public enum Deadline: Hashable, Sendable {
        /// A stopping worker outlived the graceful timeout, or the watchdog signal's grace: SIGKILL.
        case kill(pid: Int32)
        /// A worker was not ready within `ready_timeout`.
        case readyTimeout(pid: Int32)
        /// Time to look in /proc whether a starting worker accepts (`readiness = accepting`).
        case acceptingSample(pid: Int32)
        /// A roll's ready successor has stayed ready for `min_ready`: it takes over.
        case settle(slot: Int)
        /// A failed slot's backoff is over.
        case restart(slot: Int)
        /// A worker missed its WATCHDOG=1.
        case workerWatchdog(pid: Int32)
        /// A worker over `max_memory` is replaced (the breach was seen earlier; this is the jittered moment).
        case recycle(pid: Int32)
        case probe(pid: Int32)
        case memoryCheck
        /// WATCHDOG=1 upwards to systemd.
        case systemdWatchdog
        /// The lame-duck delay is over: drain.
        case lameDuckEnd
        /// Autoscaling samples the load every second while it is not resting (Pool+Autoscaling.swift).
        case loadSample
        /// A reload proving its new workers looks at the listeners' queues (Pool+Backlog.swift).
        case backlogLook
    }

    /// When `deadline` is armed; nil when it is not (any more).
    func instant(of deadline: Deadline) -> Instant? {
        switch deadline {
        case .kill(let pid):
            guard let worker = workers[pid], !worker.killed else { return nil }
            return worker.killAt
        case .readyTimeout(let pid):
            guard let worker = workers[pid], !worker.killed, readyTimeoutApplies(worker) else { return nil }
            return worker.startedAt + policy.readyTimeout
        case .acceptingSample(let pid):
            guard phase.isActive, let worker = workers[pid], worker.readyAt == nil, !worker.isStopping else { return nil }
            return worker.readiness.sampleDue
        case .settle(let slot):
            return phase.isActive ? settleEnd(slot) : nil
        case .restart(let slot):
            guard phase.isActive, slots.indices.contains(slot), slots[slot].pid == nil else { return nil }
            return slots[slot].restartAt
        case .workerWatchdog(let pid):
            guard phase.isActive, let worker = workers[pid], !worker.isStopping, worker.health.watchdogInterval != nil else { return nil }
            return worker.health.watchdogDeadline
        case .recycle(let pid):
            guard phase.isActive, let worker = workers[pid], !worker.isStopping else { return nil }
            return worker.health.recycleAt
        case .probe(let pid):
            guard phase.isActive, let worker = workers[pid], !worker.isStopping, !worker.health.probing else { return nil }
            return worker.health.probeDue
        case .memoryCheck:
            return phase.isActive ? nextMemoryCheck : nil
        case .systemdWatchdog:
            // An exited pool has asked the shell to exit: nothing more is due.
            return policy.systemdWatchdogInterval == nil || phase == .exited ? nil : nextWatchdogPing
        case .lameDuckEnd:
            return phase.lameDuckEnd
        case .loadSample:
            return loadSampleDue
        case .backlogLook:
            return phase.isActive ? roll?.backlogLookDue : nil
        }
    }

    /// Every deadline that could be armed, in the order due ones are handled: kills before restarts,
    /// a worker's watchdog before its probe, all probes after the replacements they might race.
    private var candidateDeadlines: [Deadline] {
        let pids = workers.keys.sorted()
        // A settled successor moves the roll on first: that may give a slot waiting out a backoff its successor.
        return pids.flatMap { [Deadline.kill(pid: $0), .readyTimeout(pid: $0), .acceptingSample(pid: $0)] }
            + slots.map { .settle(slot: $0.id) }
            + slots.map { .restart(slot: $0.id) }
            + pids.flatMap { [Deadline.workerWatchdog(pid: $0), .recycle(pid: $0)] }
            + pids.map { .probe(pid: $0) }
            + [.memoryCheck, .systemdWatchdog, .lameDuckEnd, .loadSample, .backlogLook]
    }

    /// The deadlines armed now, with their instants, in handling order.
    public var armedDeadlines: [(deadline: Deadline, at: Instant)] {
        candidateDeadlines.compactMap { deadline in instant(of: deadline).map { (deadline, $0) } }
    }

    /// The earliest instant at which the core wants a `deadlineReached`; nil means sleep until an event.
    public var nextDeadline: Instant? { armedDeadlines.map(\.at).min() }

    /// Handles every deadline that has passed, in table order. One handled earlier in the same pass may
    /// have disarmed a later one (a worker killed at its ready timeout is not probed too), so each is checked again.
    mutating func deadlinesPassed(at now: Instant) -> [Action] {
        var actions: [Action] = []
        for (deadline, _) in armedDeadlines {
            guard let due = instant(of: deadline), due <= now else { continue }
            actions += fire(deadline, at: now)
        }
        return actions
    }

    /// What happens when `deadline` passes. Each handler must disarm or move its deadline, or the loop would spin.
    private mutating func fire(_ deadline: Deadline, at now: Instant) -> [Action] {
        switch deadline {
        case .kill(let pid):
            guard let worker = workers[pid] else { return [] }
            workers[pid]?.killed = true
            let waited = worker.killReason != nil ? "the watchdog signal (\(policy.health.watchdogKillAfter.spoken))" : "the graceful timeout (\(policy.gracefulTimeout.spoken))"
            return [.report(PoolEvent(.killed, .warning, "worker \(worker.slot) (pid \(pid)) outlived \(waited); killing it",
                                      slot: worker.slot, pid: pid, generation: worker.generation, reason: worker.killCause)),
                    .signal(pid: pid, .kill)]
        case .readyTimeout(let pid):
            return expireReadyTimeout(pid, at: now)
        case .acceptingSample(let pid):
            // Cleared until the answer comes (`acceptingSampled` sets the next one).
            workers[pid]?.readiness.sampleDue = nil
            return [.sampleAccepting([pid])]
        case .settle(let slot):
            return promote(slot, at: now)
        case .restart(let id):
            // The exec result comes later as an event (`spawned` or `spawnFailed`, which sets it anew):
            // left armed, the restart would fire again, at once, until then.
            slots[id].restartAt = nil
            return [.spawn(slot: id, generation: newGeneration(for: id), release: slots[id].release)]
        case .workerWatchdog(let pid):
            let interval = workers[pid]?.health.watchdogInterval ?? .zero
            return watchdogFired(pid, reason: "watchdog missed: no WATCHDOG=1 for \(interval.spoken)", at: now)
        case .recycle(let pid):
            return replaceUnhealthy(pid, reason: workers[pid]?.health.verdict ?? "over max_memory", cause: .memory, at: now)
        case .probe(let pid):
            workers[pid]?.health.probeDue = nil
            // A reload may have turned probes off.
            guard policy.health.probePath != nil else { return [] }
            workers[pid]?.health.probing = true
            return [.probe(pid: pid)]
        case .memoryCheck:
            nextMemoryCheck = now + policy.health.memoryCheckInterval
            let pids = workers.values.filter { !$0.isStopping }.map(\.pid).sorted()
            return pids.isEmpty ? [] : [.sampleMemory(pids)]
        case .systemdWatchdog:
            return systemdWatchdogDue(at: now)
        case .lameDuckEnd:
            return lameDuckEnded(at: now)
        case .loadSample:
            return requestLoadSample()
        case .backlogLook:
            return backlogLookDue()
        }
    }

    func readyTimeoutApplies(_ worker: WorkerProcess) -> Bool {
        policy.readiness != .exec && worker.readyAt == nil && worker.killAt == nil
    }
}
