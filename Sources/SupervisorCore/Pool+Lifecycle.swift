/// Exits, restarts, scaling and the stop sequence.
extension Pool {
    mutating func workerExited(pid: Int32, status: ExitStatus, at now: Instant) -> [Action] {
        guard let worker = workers.removeValue(forKey: pid) else {
            return [.log(.debug, "reaped pid \(pid) (\(status)), not a worker")]
        }
        // What the worker left in its process group was killed by the shell just before the reap, while the
        // zombie still pinned the group id (EventLoop.reapChildren): a signal now could reach a stranger.
        var actions: [Action] = []
        let current = slots.indices.contains(worker.slot) && slots[worker.slot].pid == pid
        if current { slots[worker.slot].pid = nil; slots[worker.slot].lastExit = status }

        let successor = slots.indices.contains(worker.slot) && slots[worker.slot].successor?.pid == pid
        if successor, phase.isActive {
            // Ready or not, a successor that exits before it took over is a failed start, exit 0 included.
            let reason = worker.killReason ?? failedStartReason(worker, status, at: now) ?? "\(status) before it took over"
            let cause = worker.killCause ?? status.failureCause ?? .failedStart
            actions.append(.report(PoolEvent(.exited, .warning, "worker \(worker.slot)'s successor (pid \(pid)) exited: \(reason)",
                                             slot: worker.slot, pid: pid, generation: worker.generation, reason: cause)))
            actions += successorFailed(worker.slot, reason: reason, cause: cause, at: now)
        } else if worker.killAt != nil, worker.killReason == nil {
            actions.append(.report(PoolEvent(.exited, .info, "worker \(worker.slot) (pid \(pid)) stopped: \(status)",
                                             slot: worker.slot, pid: pid, generation: worker.generation)))
        } else if case .stopping = phase {
            actions.append(.report(PoolEvent(.exited, .warning, "worker \(worker.slot) (pid \(pid)) exited while draining: \(status)",
                                             slot: worker.slot, pid: pid, generation: worker.generation)))
        } else if current, let next = slots[worker.slot].successor {
            // The roll is already replacing it; the successor takes over the slot when ready.
            actions.append(.report(PoolEvent(.exited, .warning, "worker \(worker.slot) (pid \(pid)) exited unexpectedly: \(status); its successor\(next.pid.map { " (pid \($0))" } ?? "") is starting",
                                             slot: worker.slot, pid: pid, generation: worker.generation, reason: worker.killCause ?? status.failureCause ?? .crash)))
        } else if current {
            // An exit nobody asked for is a failure whatever its status; within min_ready it is a failed start.
            let failedStart = failedStartReason(worker, status, at: now)
            let reason = failedStart ?? worker.killReason ?? status.description
            let cause = worker.killCause ?? status.failureCause ?? (failedStart != nil ? .failedStart : .crash)
            actions.append(.report(PoolEvent(.exited, .warning, "worker \(worker.slot) (pid \(pid)) exited unexpectedly: \(reason)\(failedStart == nil ? " after \((now - worker.startedAt).spoken)" : "")",
                                             slot: worker.slot, pid: pid, generation: worker.generation, reason: cause)))
            if let readyAt = worker.readyAt, now - readyAt >= policy.backoff.reset { slots[worker.slot].failures = 0 }
            actions += slotFailed(worker.slot, reason: reason, cause: cause, at: now)
        } else {
            actions.append(.report(PoolEvent(.exited, .info, "worker \(worker.slot) (pid \(pid)) ended: \(worker.killReason ?? status.description)",
                                             slot: worker.slot, pid: pid, generation: worker.generation)))
        }
        if case .stopping(let code) = phase, workers.isEmpty {
            phase = .exited
            actions.append(.log(.notice, "all workers stopped; exiting with status \(code)"))
            actions.append(.exit(code: code))
        }
        return actions
    }

    /// Counts a failure against the slot and restarts it after the backoff, or gives up per `crash_loop`.
    mutating func slotFailed(_ slot: Int, reason: String, cause: FailureReason, at now: Instant) -> [Action] {
        // Once the stop began (a crash loop elsewhere with crash_loop = exit, say), nothing restarts.
        guard phase.isActive else { return [] }
        slots[slot].failures += 1
        slots[slot].lastFailure = reason
        let failures = slots[slot].failures
        var actions: [Action] = []
        if failures >= policy.crashLoopThreshold {
            if policy.crashLoop == .exit {
                actions.append(.report(PoolEvent(.crashLoop, .error, "worker \(slot) failed \(failures) times in a row (last: \(reason)); crash_loop = exit, so the supervisor stops and leaves the restart to systemd",
                                                 slot: slot, reason: cause)))
                return actions + beginStop(exitCode: 1, reason: "crash loop in worker \(slot)", at: now)
            }
            if failures == policy.crashLoopThreshold {
                actions.append(.report(PoolEvent(.crashLoop, .error, "crash loop: worker \(slot) failed \(failures) times in a row (last: \(reason)); retrying with backoff up to \(policy.backoff.maximum.spoken)",
                                                 slot: slot, reason: cause)))
            }
        }
        let delay = policy.backoff.delay(afterFailures: failures, unit: random.nextUnit())
        slots[slot].restarts += 1
        if delay == .zero {
            actions.append(.report(PoolEvent(.restart, .notice, "restarting worker \(slot) now", slot: slot, reason: cause)))
            actions.append(.spawn(slot: slot, generation: newGeneration(for: slot), release: slots[slot].release))
        } else {
            slots[slot].restartAt = now + delay
            actions.append(.report(PoolEvent(.restart, .notice, "restarting worker \(slot) in \(delay.spoken)", slot: slot, reason: cause)))
        }
        return actions
    }

    mutating func scale(to count: Int, at now: Instant) -> [Action] {
        guard count != desired, count >= 1, count <= policy.maxWorkers else { return [] }
        if count > desired, let waiting = slotWaitingForResources {
            return [.log(.warning, "not scaling \(desired) → \(count): worker \(waiting.id) could not start for want of resources (\(waiting.lastFailure ?? "a resource limit")); the pool grows again once it runs")]
        }
        var actions: [Action] = [.report(PoolEvent(.scaled, .notice, "scaling \(desired) → \(count)"))]
        scalingFrom = desired
        allReadyLogged = false
        if count > desired {
            for id in desired..<count {
                slots.append(Slot(id: id, release: release))
                // A start of the removed slot may still be answered: the new one's numbers come after its.
                slots[id].askedGeneration = retiredGenerations[id] ?? 0
                actions.append(.spawn(slot: id, generation: newGeneration(for: id), release: release))
            }
        } else {
            for slot in slots[count...].reversed() {
                if let pid = slot.pid { actions += stop(pid, at: now) }
                if let pid = slot.successor?.pid { actions += stop(pid, at: now) }
            }
            for slot in slots[count...] { retiredGenerations[slot.id] = max(slot.generation, slot.askedGeneration) }
            slots.removeSubrange(count...)
            actions += forgetRemovedSlots(at: now)
        }
        return actions
    }

    /// Asks one worker to stop gracefully: SIGTERM now, SIGKILL after the graceful timeout.
    mutating func stop(_ pid: Int32, at now: Instant) -> [Action] {
        guard var worker = workers[pid], worker.killAt == nil, !worker.killed else { return [] }
        worker.killAt = now + policy.gracefulTimeout
        workers[pid] = worker
        return [.signal(pid: pid, .terminate)]
    }

    mutating func beginStop(exitCode: Int32, reason: String, at now: Instant) -> [Action] {
        phase = .stopping(exitCode: exitCode)
        for index in slots.indices { slots[index].restartAt = nil }
        let interrupted = roll
        var actions: [Action] = [
            .report(PoolEvent(.stopping, .notice, "\(reason): draining \(workers.count) workers (graceful timeout \(policy.gracefulTimeout.spoken))")),
            .notifySystemd([.stopping, .extendTimeout(policy.gracefulTimeout + .seconds(5))]),
        ]
        for pid in workers.keys.sorted() { actions += stop(pid, at: now) }
        if let interrupted { actions.append(endRoll(interrupted, succeeded: false, summary: "\(interrupted.kind) interrupted: the supervisor is stopping", at: now)) }
        if workers.isEmpty {
            phase = .exited
            actions.append(.exit(code: exitCode))
        }
        return actions
    }

    mutating func killAll(reason: String) -> [Action] {
        var actions: [Action] = [.log(.warning, "\(reason): killing \(workers.values.count { !$0.killed }) workers now")]
        for pid in workers.keys.sorted() where !(workers[pid]?.killed ?? true) {
            workers[pid]?.killed = true
            actions.append(.signal(pid: pid, .kill))
        }
        return actions
    }
}
