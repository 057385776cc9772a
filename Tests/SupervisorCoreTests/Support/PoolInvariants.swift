@testable import SupervisorCore

/// Watches every `handle` call of one random run and collects what breaks the pool's invariants.
///
/// It keeps the pool as it was before each call, so it can judge transitions (a ready worker lost, a
/// roll ended) as well as states, and a small model of its own for what the core must not decide alone
/// (which pids exist, when systemd last heard WATCHDOG=1).
final class PoolInvariants {
    private(set) var found: [String] = []
    /// "seed 12 step 40": where the next violation happens, to replay it.
    var step = ""
    private(set) var exits = 0
    private var before: Pool
    private var spawned: Set<Int32> = []
    private var terminated: Set<Int32> = []
    /// When some worker was last ready, as seen after a `handle` (the start counts, as in the core).
    private var lastReadyAt: Instant
    /// The last WATCHDOG=1 upwards, and whether the pool was hopeless (ping legitimately withheld) since.
    private var lastPingAt: Instant
    private var hopelessSincePing = false
    /// A reload that failed and is rolling back: its id and the release it tried, whose workers must all go.
    private var failedReload: (id: Int, release: Int)? = nil

    init(_ pool: Pool, at now: Instant) {
        before = pool
        lastReadyAt = now
        lastPingAt = now
    }

    func add(_ text: String) { if found.count < 5 { found.append("\(step): \(text)") } }

    /// Checks one `handle` call: its actions against the pool before and after it.
    func check(_ event: Event, _ actions: [Action], _ pool: Pool, at now: Instant) {
        let before = self.before
        defer {
            self.before = pool
            if pool.readyCount > 0 { lastReadyAt = now }
        }
        if case let .spawned(_, _, pid) = event { spawned.insert(pid) }
        if before.phase == .exited, !actions.allSatisfy(Self.harmlessAfterExit) { add("\(actions) after exit, on \(event)") }
        checkActions(event, actions, before, pool, at: now)
        checkStructure(event, pool)
        checkCapacity(event, before, pool)
        checkRoll(event, actions, before, pool)
        checkSystemdWatchdog(actions, before, pool, at: now)
        checkUpgradePreparation(event, actions, before, pool)
    }

    /// One upgrade prepared at a time, only while the pool takes traffic; each answered exactly once (a refusal
    /// or the exec), the exec only for a pool at rest; a check cancelled only when one ran.
    private func checkUpgradePreparation(_ event: Event, _ actions: [Action], _ before: Pool, _ pool: Pool) {
        if pool.upgradePreparation != nil, !pool.phase.acceptsTraffic { add("an upgrade is still prepared while \(pool.phase), after \(event)") }
        let checks = actions.filter { if case .checkUpgrade = $0 { true } else { false } }.count
        let execs = actions.filter { if case .execUpgrade = $0 { true } else { false } }.count
        let cancels = actions.filter { $0 == .cancelUpgradeCheck }.count
        if checks > 0, checks > 1 || before.upgradePreparation != nil || pool.upgradePreparation == nil {
            add("\(checks) upgrade checks asked with \(String(describing: before.upgradePreparation)) prepared before, after \(event)")
        }
        if execs > 0, execs > 1 || before.upgradePreparation == nil || pool.upgradeRefusal != nil {
            add("an upgrade exec with nothing prepared or a pool not at rest (\(pool.upgradeRefusal ?? "at rest")), after \(event)")
        }
        if cancels > 0, cancels > 1 || before.upgradePreparation == nil { add("an upgrade check cancelled with none running, after \(event)") }
        if let prepared = before.upgradePreparation, pool.upgradePreparation == nil, case .client(let fd) = prepared.requester {
            let answers = actions.filter { if case .reply(fd, .refused) = $0 { true } else { false } }.count + execs
            if answers != 1 { add("the upgrade prepared for client \(fd) ended with \(answers) answers, after \(event)") }
        }
    }

    /// Checks the pool between two events, once every spawn has been answered.
    /// `waiting`: spawns asked for whose result the shell has not reported yet (slot, generation).
    func checkSettled(_ pool: Pool, waiting: [(slot: Int, generation: Int)] = []) {
        guard pool.phase == .starting || pool.phase == .running else { return }
        for slot in pool.slots {
            let spawning = waiting.contains { $0.slot == slot.id && $0.generation > slot.generation }
            // No slot is forgotten: it has a worker, a successor starting, a start under way or a restart on the clock.
            if slot.pid == nil, slot.restartAt == nil, slot.successor == nil, !spawning { add("slot \(slot.id) has neither a worker, a successor nor a restart due") }
            if let successor = slot.successor, successor.pid == nil,
               !waiting.contains(where: { $0.slot == slot.id && $0.generation == successor.generation }) {
                add("slot \(slot.id)'s successor generation \(successor.generation) was never spawned")
            }
        }
    }

    private static func harmlessAfterExit(_ action: Action) -> Bool {
        switch action {
        case .log, .report, .signal(_, .kill): true
        default: false
        }
    }

    private func checkActions(_ event: Event, _ actions: [Action], _ before: Pool, _ pool: Pool, at now: Instant) {
        let live = pool.phase == .starting || pool.phase == .running
        var spawnedSlots: Set<Int> = []
        for action in actions {
            switch action {
            case let .spawn(id, generation, release):
                if !spawnedSlots.insert(id).inserted { add("two spawns of slot \(id) in one batch after \(event)") }
                if !live || exits > 0 { add("spawn of slot \(id) while \(pool.phase), on \(event)") }
                guard pool.slots.indices.contains(id) else {
                    add("spawn of slot \(id), which does not exist (desired \(pool.desired)) after \(event)")
                    continue
                }
                let slot = pool.slots[id]
                if let successor = slot.successor, successor.generation == generation {
                    // A successor's generation is the slot's as soon as it is asked for.
                    if successor.pid != nil || slot.generation != generation || successor.release != release {
                        add("successor spawn of slot \(id) generation \(generation) release \(release) does not match \(slot) after \(event)")
                    }
                } else if slot.pid != nil || slot.successor != nil || generation <= slot.generation || generation != slot.askedGeneration
                            || release != slot.release {
                    // A start takes the slot's newest number (`newGeneration`): never one a start still under way has.
                    add("restart spawn of slot \(id) generation \(generation) release \(release) does not match \(slot) after \(event)")
                }
            case .exit:
                exits += 1
                if exits > 1 { add("a second exit on \(event)") }
                if pool.phase != .exited || !pool.workers.isEmpty { add("exit while \(pool.phase) with \(pool.workers.count) workers, on \(event)") }
            case let .signal(pid, signal):
                if !spawned.contains(pid) { add("\(signal) to pid \(pid), never a worker, on \(event)") }
                // Only a live worker is signalled, or the process group of one just reaped or just refused.
                let reaped: Int32? = if case let .exited(p, _) = event { p } else if case let .spawned(_, _, p) = event { p } else { nil }
                if pool.workers[pid] == nil, pid != reaped { add("\(signal) to pid \(pid), which is no longer a worker, on \(event)") }
                if signal == .terminate {
                    if !terminated.insert(pid).inserted { add("a second SIGTERM to pid \(pid) on \(event)") }
                    if live, pool.slots.contains(where: { $0.pid == pid || $0.successor?.pid == pid }) {
                        add("SIGTERM to pid \(pid), still a slot's worker or successor, on \(event)")
                    }
                }
            default: break
            }
        }
    }

    private func checkStructure(_ event: Event, _ pool: Pool) {
        let live = pool.phase == .starting || pool.phase == .running
        for (index, slot) in pool.slots.enumerated() {
            if slot.id != index { add("slot at \(index) has id \(slot.id)") }
            if let pid = slot.pid {
                if let worker = pool.workers[pid] {
                    if worker.slot != slot.id { add("slot \(slot.id) points at pid \(pid), a worker of slot \(worker.slot)") }
                    if worker.generation > slot.generation { add("slot \(slot.id) is at generation \(slot.generation) but its worker at \(worker.generation)") }
                    // A drained worker's exit restarts nothing: a slot left pointing at one would be forgotten.
                    if live, worker.isStopping, worker.killReason == nil { add("slot \(slot.id)'s current worker \(pid) is draining, after \(event)") }
                } else {
                    add("slot \(slot.id) points at pid \(pid), which is not a worker, after \(event)")
                }
                if live, slot.restartAt != nil { add("slot \(slot.id) has a worker and a restart due, after \(event)") }
            }
            if let successor = slot.successor {
                if successor.generation != slot.generation { add("slot \(slot.id) at generation \(slot.generation) has a successor of generation \(successor.generation)") }
                // While stopping, a successor that ended is left in place: nothing reads it any more.
                if live, let pid = successor.pid {
                    let worker = pool.workers[pid]
                    if pid == slot.pid { add("slot \(slot.id)'s successor is its current worker \(pid)") }
                    if worker?.slot != slot.id || worker?.generation != successor.generation || worker?.release != successor.release {
                        add("slot \(slot.id)'s successor \(successor) does not match its worker \(String(describing: worker)), after \(event)")
                    }
                    if let current = slot.pid.flatMap({ pool.workers[$0] }), current.generation >= successor.generation {
                        add("slot \(slot.id)'s successor is not newer than its worker, after \(event)")
                    }
                }
            }
        }
        // Every worker that is not on its way out is its slot's current worker or that slot's successor.
        for worker in pool.workers.values where !worker.isStopping {
            let slot = pool.slots.indices.contains(worker.slot) ? pool.slots[worker.slot] : nil
            if slot?.pid != worker.pid, slot?.successor?.pid != worker.pid {
                add("live pid \(worker.pid) is neither the worker nor the successor of slot \(worker.slot), after \(event)")
            }
        }
        if pool.phase == .exited, !pool.workers.isEmpty { add("\(pool.workers.count) workers left after exit, on \(event)") }
        // A reload may turn max_memory on: memory must then be checked.
        if live, pool.policy.health.maxMemory != nil, pool.nextMemoryCheck == nil { add("max_memory is set but memory is never checked, after \(event)") }
    }

    /// A slot's ready worker stays ready, or is replaced by a ready one, unless it went on its own
    /// (it exited, or it has a verdict: hung, unhealthy, over max_memory with its replacement failed).
    /// This is what makes a roll keep ready capacity: the roll alone never takes a ready worker away.
    private func checkCapacity(_ event: Event, _ before: Pool, _ pool: Pool) {
        guard pool.phase == .starting || pool.phase == .running else { return }
        for slot in before.slots {
            guard let pid = slot.pid, before.workers[pid]?.isReady == true, pool.slots.indices.contains(slot.id) else { continue }
            if let now = pool.slots[slot.id].pid, pool.workers[now]?.isReady == true { continue }
            if case .exited(pid, _) = event { continue }
            if pool.workers[pid]?.health.verdict != nil { continue }
            add("slot \(slot.id) lost its ready worker \(pid) without a ready replacement on \(event) (roll: \(String(describing: pool.roll)))")
        }
    }

    private func checkRoll(_ event: Event, _ actions: [Action], _ before: Pool, _ pool: Pool) {
        if let roll = pool.roll {
            if !(pool.phase == .starting || pool.phase == .running) { add("a \(roll.kind) survives into \(pool.phase)") }
            if roll.done + roll.active.count + roll.queue.count > roll.total { add("roll counts exceed its total: \(roll)") }
            if Set(roll.queue).count != roll.queue.count || !roll.active.isDisjoint(with: roll.queue) { add("roll queue repeats a slot: \(roll)") }
            for id in roll.queue where !pool.slots.indices.contains(id) { add("roll queue holds slot \(id), which does not exist") }
            for id in roll.active where !(pool.slots.indices.contains(id) && pool.slots[id].successor != nil) {
                add("roll is replacing slot \(id), which has no successor, after \(event)")
            }
            if roll.kind != .restart, pool.release != roll.release { add("pool release \(pool.release) during a \(roll.kind) to \(roll.release)") }
            if before.roll == nil {
                if roll.id <= before.lastRoll?.id ?? 0 { add("roll \(roll.id) does not come after the last one \(String(describing: before.lastRoll))") }
                if roll.kind == .reload, !actions.systemdNotices.contains(where: { if case .reloading = $0 { true } else { false } }) { add("a reload began without RELOADING=1") }
            }
        }
        checkParallelRoll(event, actions, before, pool)
        guard let ended = before.roll, pool.roll?.id != ended.id else { return }
        guard let outcome = pool.lastRoll, outcome.id == ended.id else {
            return add("roll \(ended.id) ended but lastRoll is \(String(describing: pool.lastRoll)), on \(event)")
        }
        guard pool.phase == .starting || pool.phase == .running else { return }
        if ended.kind != .restart, !actions.systemdNotices.contains(.ready) { add("a \(ended.kind) ended without READY=1 to systemd, on \(event)") }
        // A reload that says it succeeded left every slot on its release.
        if outcome.succeeded, ended.kind == .reload {
            for slot in pool.slots {
                let running = slot.pid.flatMap { pool.workers[$0]?.release }
                if slot.release != ended.release || (running != nil && running != ended.release) {
                    add("reload to release \(ended.release) succeeded, but slot \(slot.id) runs release \(running.map(String.init) ?? "-") (slot release \(slot.release)), on \(event)")
                }
            }
        }
    }

    /// Parallel rolls: never more than `max_surge` new workers starting at once; a reload that fails kills
    /// every new worker not yet taken over and touches no old one; once its rollback completes, no worker of
    /// the failed release is left.
    private func checkParallelRoll(_ event: Event, _ actions: [Action], _ before: Pool, _ pool: Pool) {
        let live = pool.phase == .starting || pool.phase == .running
        // A roll starts a new worker only while fewer than max_surge are starting (a settling one that is
        // then killed counts again until its exit ends the roll, but starts nothing).
        if live, let roll = pool.roll, actions.contains(where: { if case .spawn(let id, _, _) = $0 { roll.active.contains(id) } else { false } }) {
            let starting = roll.active.count(where: pool.countsAgainstSurge)
            let surge = pool.policy.maxSurge.resolved(for: pool.desired)
            let dying = roll.active.count { id in pool.slots[id].successor?.pid.flatMap { pool.workers[$0] }?.isStopping == true }
            if starting - dying > surge { add("\(starting) new workers starting at once, max_surge is \(surge), after \(event)") }
        }
        if let was = before.roll, was.kind == .reload, pool.roll?.kind != .reload, pool.lastRoll?.id == was.id || pool.roll?.id == was.id,
           pool.lastRoll?.succeeded != true || pool.roll?.kind == .rollback {
            if live {
                failedReload = (was.id, was.release)
                // (A slot outside the roll replacing an unhealthy worker keeps that replacement: the rollback takes it.)
                for slot in pool.slots where was.active.contains(slot.id) {
                    if let successor = slot.successor, successor.release == was.release, let pid = successor.pid, pool.workers[pid].map({ !$0.isStopping }) == true {
                        add("slot \(slot.id)'s new worker \(pid) survived the failed reload, on \(event)")
                    }
                }
                // The old workers are untouched: none that was serving is signalled by the failure itself (one still
                // starting may meet the ready_timeout of the settings restored).
                for (pid, signal) in actions.compactMap({ a -> (Int32, Signal)? in if case let .signal(p, s) = a { (p, s) } else { nil } }) {
                    guard let worker = before.workers[pid], worker.release != was.release, worker.health.verdict == nil, worker.isReady,
                          before.slots.contains(where: { $0.pid == pid }) else { continue }
                    if case .exited(pid, _) = event { continue }
                    add("the failed reload sent \(signal) to old worker \(pid), on \(event)")
                }
            }
        }
        if let failed = failedReload, pool.roll?.id != failed.id {
            failedReload = nil
            // A rollback that failed too says so; one that completed left nothing of the failed release running.
            if live, let outcome = pool.lastRoll, outcome.id == failed.id, !outcome.summary.contains("failed too") {
                for worker in pool.workers.values where worker.release == failed.release && !worker.isStopping && !worker.killed {
                    add("worker \(worker.pid) of the failed release \(failed.release) outlived its rollback, after \(event)")
                }
            }
        }
    }

    /// WATCHDOG=1 goes up never while the pool is hopeless, and never too late while it is not.
    private func checkSystemdWatchdog(_ actions: [Action], _ before: Pool, _ pool: Pool, at now: Instant) {
        guard let interval = pool.policy.systemdWatchdogInterval else { return }
        let health = pool.policy.health
        let hopeless = health.watchdogRequiresReady && pool.readyCount == 0 && now - lastReadyAt >= health.unreadyTimeout
        let wasHopeless = health.watchdogRequiresReady && before.readyCount == 0 && now - lastReadyAt >= health.unreadyTimeout
        if wasHopeless || hopeless { hopelessSincePing = true }
        // systemd's own timeout is twice the ping interval.
        if pool.phase != .exited, !hopelessSincePing, now - lastPingAt > interval * 2 {
            add("no WATCHDOG=1 for \((now - lastPingAt).spoken) while some worker was ready; systemd would kill the supervisor")
        }
        guard actions.systemdNotices.contains(.watchdog) else { return }
        if hopeless { add("WATCHDOG=1 while no worker has been ready for \((now - lastReadyAt).spoken)") }
        lastPingAt = now
        hopelessSincePing = false
    }
}
