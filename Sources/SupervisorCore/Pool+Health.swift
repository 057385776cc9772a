/// Worker watchdogs, HTTP probes, the memory ceiling and the supervisor's own systemd watchdog.
extension Pool {
    /// A freshly exec'd worker with its readiness and health timers set.
    func newWorker(pid: Int32, slot: Int, generation: Int, release: Int, at now: Instant) -> WorkerProcess {
        var worker = WorkerProcess(pid: pid, slot: slot, generation: generation, release: release, startedAt: now)
        initialReadiness(of: &worker, at: now)
        worker.health.watchdogInterval = policy.health.workerWatchdog
        if policy.health.probePath != nil {
            worker.health.probeDue = now + (policy.readiness == .http ? policy.health.readyProbeInterval : policy.health.probeInterval)
        }
        return worker
    }

    /// Takes the settings of a reload (or back from a failed one): memory checks start or stop with `max_memory`.
    mutating func adopt(_ newPolicy: PoolPolicy, at now: Instant) {
        policy = newPolicy
        if newPolicy.health.maxMemory == nil { nextMemoryCheck = nil }
        else if nextMemoryCheck == nil { nextMemoryCheck = now + newPolicy.health.memoryCheckInterval }
    }

    /// WATCHDOG=1 re-arms the worker's watchdog; WATCHDOG=trigger fires it; WATCHDOG_USEC= changes it.
    mutating func watchdogNotified(_ pid: Int32, _ message: NotifyMessage, at now: Instant) -> [Action] {
        guard var worker = workers[pid], !worker.isStopping else { return [] }
        if let interval = message.watchdogInterval {
            worker.health.watchdogInterval = interval
            if worker.health.watchdogDeadline != nil { worker.health.watchdogDeadline = now + interval }
        }
        if message.watchdog, let interval = worker.health.watchdogInterval {
            worker.health.lastWatchdogAt = now
            worker.health.watchdogDeadline = now + interval
        }
        workers[pid] = worker
        if message.watchdogTrigger { return watchdogFired(pid, reason: "watchdog triggered by the worker (WATCHDOG=trigger)", at: now) }
        return []
    }

    /// A hung worker cannot drain: the watchdog signal (with SIGCONT, so a stopped one acts on it), then SIGKILL.
    mutating func watchdogFired(_ pid: Int32, reason: String, at now: Instant) -> [Action] {
        guard var worker = workers[pid], !worker.isStopping else { return [] }
        let signal = policy.health.watchdogSignal
        worker.health.verdict = reason
        worker.health.verdictCause = .watchdog
        worker.killReason = reason
        worker.killCause = .watchdog
        worker.health.watchdogDeadline = nil
        if signal == .kill { worker.killed = true } else { worker.killAt = now + policy.health.watchdogKillAfter }
        workers[pid] = worker
        var actions: [Action] = [.report(PoolEvent(.watchdog, .warning, "worker \(worker.slot) (pid \(pid)): \(reason); sending \(SignalName.of(signal.rawValue))",
                                                   slot: worker.slot, pid: pid, generation: worker.generation, reason: .watchdog)),
                                 .signal(pid: pid, signal), .signal(pid: pid, .cont)]
        // It serves nobody already: its slot restarts now rather than when it has finally gone.
        let id = worker.slot
        if slots.indices.contains(id), slots[id].pid == pid, slots[id].successor == nil {
            slots[id].pid = nil
            slots[id].lastExit = nil
            actions += slotFailed(id, reason: reason, cause: .watchdog, at: now)
        }
        return actions
    }

    mutating func probed(_ pid: Int32, _ result: ProbeResult, at now: Instant) -> [Action] {
        guard var worker = workers[pid] else { return [] }
        worker.health.probing = false
        worker.health.lastProbe = result
        guard !worker.isStopping else {
            workers[pid] = worker
            return []
        }
        var actions: [Action] = []
        let becomesReady = result.ok && worker.readyAt == nil && policy.readiness == .http
        if result.ok {
            worker.health.failedProbes = 0
        } else if worker.readyAt != nil, policy.readiness != .exec || now >= worker.startedAt + (policy.health.probeGrace ?? policy.readyTimeout) {
            // The grace covers only the time before a worker is ready: once it is (through a real signal),
            // a failure counts at once. With `exec`, "ready" is the exec itself, so the grace still runs.
            worker.health.failedProbes += 1
            actions.append(.report(PoolEvent(.probeFailed, .warning, "worker \(worker.slot) (pid \(pid)) health probe failed (\(worker.health.failedProbes)/\(policy.health.probeFailures)): \(result.detail)",
                                             slot: worker.slot, pid: pid, generation: worker.generation, reason: .probe)))
        }
        worker.health.probeDue = now + (worker.readyAt == nil && !becomesReady ? policy.health.readyProbeInterval : policy.health.probeInterval)
        workers[pid] = worker
        if becomesReady { actions += becameReady(pid, evidence: "first good probe (\(result.detail))", at: now) }
        let failed = worker.health.failedProbes
        if failed >= policy.health.probeFailures {
            actions += replaceUnhealthy(pid, reason: "\(failed)/\(policy.health.probeFailures) health probes failed (last: \(result.detail))", cause: .probe, at: now)
        }
        return actions
    }

    mutating func memorySampled(_ usage: [Int32: UInt64], at now: Instant) -> [Action] {
        guard let ceiling = policy.health.maxMemory else { return [] }
        var actions: [Action] = []
        for (pid, bytes) in usage.sorted(by: { $0.key < $1.key }) where bytes > ceiling {
            guard var worker = workers[pid], !worker.isStopping, worker.health.recycleAt == nil, worker.health.verdict == nil else { continue }
            // Only a slot's current worker can be replaced; a successor is judged once it has taken over
            // (a recycle deadline it could not act on would stay due, and the event loop would spin).
            guard slots.indices.contains(worker.slot), slots[worker.slot].pid == pid else { continue }
            // Spread over one check interval, so workers that grew together do not recycle together.
            let delay = Duration.nanoseconds(Int64(random.nextUnit() * Double(policy.health.memoryCheckInterval.nanoseconds)))
            worker.health.recycleAt = now + delay
            worker.health.verdict = "memory \(bytes.mebibytes) MiB over max_memory \(ceiling.mebibytes) MiB"
            worker.health.verdictCause = .memory
            workers[pid] = worker
            actions.append(.log(.notice, "worker \(worker.slot) (pid \(pid)) uses \(bytes.mebibytes) MiB, over max_memory (\(ceiling.mebibytes) MiB); recycling it in \(delay.spoken)"))
        }
        return actions
    }

    /// Replaces a worker that runs but does not serve well: its successor starts first, and it drains once
    /// the successor is ready, so capacity does not drop.
    mutating func replaceUnhealthy(_ pid: Int32, reason: String, cause: FailureReason, at now: Instant) -> [Action] {
        guard var worker = workers[pid], !worker.isStopping, phase.isActive else { return [] }
        let id = worker.slot
        guard slots.indices.contains(id), slots[id].pid == pid else { return [] }
        worker.health.verdict = reason
        worker.health.verdictCause = cause
        worker.health.recycleAt = nil
        workers[pid] = worker
        guard slots[id].successor == nil else { return [] }
        slots[id].lastFailure = reason
        slots[id].restarts += 1
        let generation = newGeneration(for: id)
        slots[id].generation = generation
        slots[id].successor = Successor(generation: generation, release: slots[id].release)
        return [.report(PoolEvent(.unhealthy, .warning, "worker \(id) (pid \(pid)) is unhealthy: \(reason); starting its replacement",
                                  slot: id, pid: pid, generation: worker.generation, reason: cause)),
                .spawn(slot: id, generation: generation, release: slots[id].release)]
    }

    /// WATCHDOG=1 upwards at half systemd's interval, in every phase, unless the pool is hopeless.
    mutating func systemdWatchdogDue(at now: Instant) -> [Action] {
        var actions: [Action] = []
        if let ping = nextWatchdogPing, ping <= now, let interval = policy.systemdWatchdogInterval {
            nextWatchdogPing = now + interval
            if watchdogWithheld(at: now) {
                if !watchdogWithholding {
                    watchdogWithholding = true
                    actions.append(.log(.error, "no worker has been ready for \(policy.health.unreadyTimeout.spoken): withholding systemd's watchdog ping, so systemd restarts the service (watchdog_requires_ready)"))
                }
            } else {
                watchdogWithholding = false
                actions.append(.notifySystemd([.watchdog]))
            }
        }
        return actions
    }

    /// Whether the pool is hopeless enough that systemd should restart the whole service.
    func watchdogWithheld(at now: Instant) -> Bool {
        guard policy.health.watchdogRequiresReady, readyCount == 0, let since = lastReadyAt else { return false }
        return now - since >= policy.health.unreadyTimeout
    }
}

extension UInt64 {
    var mebibytes: UInt64 { (self + (1 << 19)) >> 20 }
}
