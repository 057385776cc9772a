import ControlProtocol

/// The pool's policy: what to do when something happens. Pure: no fds, no syscalls, no clock.
/// The shell feeds every event through `handle(_:at:)`, performs the returned actions in order,
/// and arms one timer for `nextDeadline`.
public struct Pool: Sendable {
    public internal(set) var policy: PoolPolicy
    public internal(set) var slots: [Slot]
    public internal(set) var workers: [Int32: WorkerProcess] = [:]
    public internal(set) var phase: Phase = .starting
    /// The count before the last scaling, shown until the pool has reached the new one.
    public internal(set) var scalingFrom: Int? = nil
    /// The autoscaling policy when `workers = auto:MIN-MAX` (Pool+Autoscaling.swift), nil with a fixed count.
    public internal(set) var autoscaler: Autoscaler?
    /// How many workers of max_memory fit in the supervisor's memory (measured by the shell), if max_memory is set.
    public internal(set) var memoryCeiling: Int?
    /// A `sampleLoad` was asked for and its `loadSampled` has not come yet.
    var loadSampleInFlight = false
    /// The listeners' accept queues at the last look (Pool+Backlog.swift).
    public internal(set) var backlog = BacklogWatch()
    /// Every configuration release in use; the shell maps a `spawn` action's release to a command and environment.
    public internal(set) var releases: Releases
    /// The configuration release new workers run.
    public internal(set) var release: Int {
        get { releases.current }
        set { releases.current = newValue }
    }
    public internal(set) var roll: Roll? = nil
    public internal(set) var lastRoll: RollOutcome? = nil
    /// An upgrade admitted and waiting for its preflight's answer (Pool+Upgrade.swift); never handed over.
    public internal(set) var upgradePreparation: UpgradePreparation? = nil
    var rollSerial = 0
    /// The last generation each removed slot asked for, so a slot added again never reuses one (Pool+Spawning.swift).
    var retiredGenerations: [Int: Int] = [:]
    var random: SplitMix64
    var nextWatchdogPing: Instant? = nil
    var nextMemoryCheck: Instant? = nil
    /// The last instant at which some worker was ready (or the start), for `watchdog_requires_ready`.
    var lastReadyAt: Instant? = nil
    var watchdogWithholding = false
    var lastStatus = ""
    /// What happened since the start, for `/metrics`; kept across reloads (PoolCounters.swift).
    public internal(set) var counters = PoolCounters()
    var allReadyLogged = false

    public init(desired: Int, policy: PoolPolicy, seed: UInt64 = 0x5EED, autoscaler: Autoscaler? = nil, memoryCeiling: Int? = nil) {
        precondition(desired >= 1 && desired <= policy.maxWorkers, "the desired count was validated by the caller")
        self.policy = policy
        self.autoscaler = autoscaler
        self.memoryCeiling = memoryCeiling
        self.releases = Releases(initial: policy.settings)
        self.slots = (0..<desired).map { Slot(id: $0) }
        self.random = SplitMix64(seed: seed)
    }

    public var desired: Int { slots.count }
    public var readyCount: Int { slots.count { $0.pid.flatMap { workers[$0] }?.isReady ?? false } }
    /// Whether every slot has a ready worker and no removed worker is still draining.
    public var isSettled: Bool { readyCount == desired && workers.count == desired }
    public var crashLoopingSlots: [Slot] {
        slots.filter { $0.failures >= policy.crashLoopThreshold && !(($0.pid.flatMap { workers[$0] })?.isReady ?? false) }
    }
    /// Why `workers N --wait` would wait in vain (up to its 15 minutes): a slot crash-looping, or waiting for
    /// resources, keeps the pool from settling at its count; nil while it may still settle.
    public var countWaitFailure: String? {
        if let looping = crashLoopingSlots.first {
            return "\(readyCount)/\(desired) workers ready, and worker \(looping.id) is crash-looping (\(looping.failures) failures in a row, last: \(looping.lastFailure ?? "unknown")); the count stays \(desired), 'hyperglassctl status' shows the retries"
        }
        if let waiting = slotWaitingForResources {
            return "\(readyCount)/\(desired) workers ready, and worker \(waiting.id) cannot start for want of resources (\(waiting.lastFailure ?? "a resource limit")); the count stays \(desired)"
        }
        return nil
    }

    public mutating func handle(_ event: Event, at now: Instant) -> [Action] {
        var actions: [Action] = []
        defer { counters.record(event, actions) }
        switch event {
        case .started:
            if let interval = policy.systemdWatchdogInterval { nextWatchdogPing = now + interval }
            if policy.health.maxMemory != nil { nextMemoryCheck = now + policy.health.memoryCheckInterval }
            lastReadyAt = now
            for id in slots.indices { actions.append(.spawn(slot: id, generation: newGeneration(for: id), release: slots[id].release)) }
        case let .spawned(slot, generation, pid):
            actions += workerSpawned(slot: slot, generation: generation, pid: pid, at: now)
        case let .spawnFailed(slot, generation, reason):
            if slots.indices.contains(slot), let successor = slots[slot].successor, successor.generation == generation, successor.pid == nil {
                actions.append(.report(PoolEvent(.spawnFailed, .error, "worker \(slot)'s successor could not start: \(reason)",
                                                 slot: slot, generation: generation, reason: .failedStart)))
                actions += successorFailed(slot, reason: "could not start: \(reason)", cause: .failedStart, at: now)
                break
            }
            // A start superseded while it was under way (its slot has a worker again, or a newer start) changes nothing.
            guard slots.indices.contains(slot), slots[slot].pid == nil, slots[slot].generation < generation else { break }
            slots[slot].generation = generation
            actions.append(.report(PoolEvent(.spawnFailed, .error, "worker \(slot) could not start: \(reason)",
                                             slot: slot, generation: generation, reason: .failedStart)))
            actions += slotFailed(slot, reason: reason, cause: .failedStart, at: now)
        case let .spawnLimited(slot, generation, reason):
            actions += spawnLimited(slot: slot, generation: generation, reason: reason, at: now)
        case let .exited(pid, status):
            actions += workerExited(pid: pid, status: status, at: now)
        case let .notified(pid, message):
            actions += workerNotified(pid: pid, message: message, at: now)
        case .deadlineReached:
            actions += deadlinesPassed(at: now)
        case let .signalReceived(signal):
            actions += signalReceived(signal, at: now)
        case let .requested(intent, requester):
            actions += requested(intent, by: requester, at: now)
        case let .configurationRead(plan, scaler, ceiling, requester):
            actions += configurationRead(plan, autoscaler: scaler, memoryCeiling: ceiling, for: requester, at: now)
        case let .configurationRejected(reason, requester):
            actions += configurationRejected(reason, for: requester, at: now)
        case let .upgradeChecked(path, newVersion, requester):
            actions += upgradeChecked(path: path, newVersion: newVersion, for: requester)
        case let .upgradeFailed(reason, requester):
            actions += upgradeFailed(reason, for: requester)
        case .loadArrived:
            actions += loadArrived(at: now)
        case let .loadSampled(sample):
            actions += loadSampled(sample, at: now)
        case let .probed(pid, result):
            actions += probed(pid, result, at: now)
        case let .acceptingSampled(samples):
            for (pid, sample) in samples.sorted(by: { $0.key < $1.key }) { actions += acceptingSampled(pid, sample, at: now) }
        case let .memorySampled(usage):
            actions += memorySampled(usage, at: now)
        case let .backlogSampled(samples):
            actions += backlogSampled(samples, at: now)
        }
        // A stop wins over an upgrade being prepared: the new image would only drain the pool.
        if upgradePreparation != nil, !phase.acceptsTraffic { actions += abandonUpgrade() }
        if !phase.isActive {
            // Nothing starts once the stop began, even what this same event asked for before it began
            // (a restart decided just before another slot's crash loop chose crash_loop = exit).
            actions.removeAll { if case .spawn = $0 { true } else { false } }
            for index in slots.indices where slots[index].successor?.pid == nil { slots[index].successor = nil }
        }
        actions += poolReadiness()
        if readyCount > 0 { lastReadyAt = now }
        actions += statusUpdate(at: now)
        return actions
    }

    // MARK: - Events

    private mutating func workerSpawned(slot: Int, generation: Int, pid: Int32, at now: Instant) -> [Action] {
        if phase == .exited {
            // A spawn asked for earlier in the same batch as the exit: nobody would supervise it.
            return [.log(.warning, "worker \(slot) started (pid \(pid)) after the pool stopped; killing it"),
                    .signal(pid: pid, .kill)]
        }
        if slots.indices.contains(slot), let successor = slots[slot].successor, successor.generation == generation, successor.pid == nil {
            return successorSpawned(slot: slot, pid: pid, at: now)
        }
        guard slots.indices.contains(slot), slots[slot].pid == nil, slots[slot].generation < generation else {
            if slots.indices.contains(slot), generation <= slots[slot].askedGeneration {
                // Its start was superseded while under way (a roll's successor or another start took the slot).
                return [.log(.info, "worker \(slot) generation \(generation) started (pid \(pid)) after another took its place; stopping it"),
                        .signal(pid: pid, .kill)]
            }
            // Nothing in the shell can produce this; a stray worker is killed rather than left unsupervised.
            return [.log(.error, "internal: unexpected worker \(slot) generation \(generation) (pid \(pid)); killing it"),
                    .signal(pid: pid, .kill)]
        }
        slots[slot].pid = pid
        slots[slot].generation = generation
        slots[slot].restartAt = nil
        slots[slot].waitingForResources = false
        workers[pid] = newWorker(pid: pid, slot: slot, generation: generation, release: slots[slot].release, at: now)
        var actions: [Action] = [.report(PoolEvent(.spawned, .info, "worker \(slot) started (pid \(pid))", slot: slot, pid: pid, generation: generation))]
        if case .stopping = phase {
            actions += stop(pid, at: now)
        }
        return actions
    }

    private mutating func workerNotified(pid: Int32, message: NotifyMessage, at now: Instant) -> [Action] {
        guard var worker = workers[pid] else {
            return [.log(.debug, "ignored a notification from pid \(pid), which is not a worker")]
        }
        var actions: [Action] = []
        if let status = message.status { worker.status = status }
        workers[pid] = worker
        if message.ready, policy.readiness == .notify {
            actions += becameReady(pid, evidence: "READY=1", at: now)
        }
        actions += watchdogNotified(pid, message, at: now)
        return actions
    }

    /// A signal, by what `Signal.meaning` says it means; requests go through the same admission as `hyperglassctl`'s.
    private mutating func signalReceived(_ signal: Signal, at now: Instant) -> [Action] {
        switch signal.meaning {
        case .stop:
            // With `lame_duck` set, first a not-ready period that still serves (Pool+LameDuck.swift).
            return stopRequested(by: signal, at: now)
        case .reload:
            return requested(.reload, by: .signal(signal), at: now)
        case .scale(let delta):
            return requested(.workers(.by(delta)), by: .signal(signal), at: now)
        case .upgrade:
            // Gunicorn's and nginx's USR2 starts a second master that the operator then stops the first of;
            // here the same pid runs the new program, so a SIGTERM "to the old master" would stop the service.
            // The admitted upgrade logs that (prepareUpgrade); a refused one, why.
            return requested(.upgrade(path: nil, wait: false), by: .signal(signal), at: now)
        case .ignored(let reason):
            return [.log(.notice, "\(signal.name) ignored: \(reason)")]
        case .reap, nil:
            // The shell reaps on SIGCHLD and reports each exit; the others are never read.
            preconditionFailure("\(signal.name) is not an event for the pool")
        }
    }
}
