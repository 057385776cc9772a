import Testing
@testable import SupervisorCore

/// Random, seeded event sequences against invariants that must hold whatever happens
/// (`PoolInvariants` lists them): crashes, readiness, health, scaling, rolls and the stop.
@Suite("Pool: invariants under random events", .timeLimit(.minutes(1)))
struct PoolPropertyTests {
    /// A policy as a configuration could give it; `systemdWatchdog` comes from systemd, so reloads keep it.
    static func randomPolicy(_ random: inout SplitMix64, systemdWatchdog: Duration?) -> PoolPolicy {
        var policy = PoolPolicy()
        let readiness = random.nextUnit()
        policy.readiness = readiness < 0.25 ? .exec : readiness < 0.5 ? .notify : readiness < 0.75 ? .http : .accepting
        policy.minReady = random.nextUnit() < 0.5 ? .zero : .milliseconds(500 + Int64(random.nextUnit() * 1500))
        policy.readyTimeout = .seconds(3)
        policy.gracefulTimeout = .seconds(5)
        policy.backoff.maximum = .seconds(8)
        policy.crashLoop = random.nextUnit() < 0.5 ? .keepTrying : .exit
        policy.crashLoopThreshold = 1 + Int(random.nextUnit() * 5)
        policy.maxWorkers = 6
        policy.maxSurge = .count(1 + Int(random.nextUnit() * 3))
        policy.systemdWatchdogInterval = systemdWatchdog
        // readiness = http needs a probe path (the loader refuses it otherwise).
        if policy.readiness == .http || random.nextUnit() < 0.4 {
            policy.health.probePath = "/health"
            policy.health.probeInterval = .milliseconds(500 + Int64(random.nextUnit() * 2500))
            policy.health.probeFailures = 1 + Int(random.nextUnit() * 3)
            policy.health.probeGrace = random.nextUnit() < 0.5 ? nil : .seconds(1)
        }
        if random.nextUnit() < 0.4 { policy.health.maxMemory = 100 << 20 }
        if random.nextUnit() < 0.4 { policy.health.workerWatchdog = .milliseconds(1000 + Int64(random.nextUnit() * 2000)) }
        if random.nextUnit() < 0.2 { policy.health.watchdogSignal = .kill }
        policy.health.watchdogKillAfter = .seconds(2)
        policy.health.watchdogRequiresReady = random.nextUnit() < 0.7
        policy.health.unreadyTimeout = .seconds(4)
        return policy
    }

    /// One random run; returns the violations found, each with its seed and step. To replay a seed,
    /// call it with `trace: true`: it prints every `handle` with its actions and the slots after it.
    /// With `lateSpawns`, spawns are answered on a later step, in any order, with other events between.
    static func run(seed: UInt64, steps: Int, lateSpawns: Bool = false, trace: Bool = false) -> [String] {
        var random = SplitMix64(seed: seed)
        let systemdWatchdog: Duration? = random.nextUnit() < 0.4 ? .seconds(2) : nil
        var driver = PoolDriver(desired: 1 + Int(random.nextUnit() * 4), policy: randomPolicy(&random, systemdWatchdog: systemdWatchdog), seed: seed)
        var spawnRandom = SplitMix64(seed: seed ^ 0xABCD)
        let failRate = random.nextUnit() * 0.4
        driver.spawnOutcome = { _, _ in spawnRandom.nextUnit() < failRate ? "fork: out of memory" : nil }
        driver.spawnsAnsweredLater = lateSpawns
        let invariants = PoolInvariants(driver.pool, at: driver.now)
        invariants.step = "seed \(seed) step 0"
        var stalled = false
        driver.onStall = { invariants.add($0); stalled = true }
        driver.observer = { event, actions, pool, now in
            if trace { print("\(invariants.step) \(now) \(event)\n    -> \(actions.filter { if case .log(.debug, _) = $0 { false } else { true } })\n    slots \(pool.slots.map { "\($0.id):\($0.pid.map(String.init) ?? "-")/\($0.successor.map { "\($0.generation)@\($0.pid ?? -1)" } ?? "-")" }) roll \(pool.roll.map { "\($0.kind) \($0.active) \($0.queue)" } ?? "-")") }
            invariants.check(event, actions, pool, at: now)
        }
        driver.start()
        var nextRelease = 2

        for step in 1...steps {
            invariants.step = "seed \(seed) step \(step)"
            if driver.pool.phase == .exited || stalled { break }
            if !driver.waitingSpawns.isEmpty, random.nextUnit() < 0.3 {
                driver.answerSpawn(at: Int(random.nextUnit() * Double(driver.waitingSpawns.count)))
                invariants.checkSettled(driver.pool, waiting: driver.waitingSpawns)
                continue
            }
            switch randomStep(&random, driver.pool, nextRelease: &nextRelease, systemdWatchdog: systemdWatchdog) {
            case let .send(event): driver.send(event)
            case .nextDeadline: _ = driver.advanceToNextDeadline()
            case .wait: driver.advance(by: .milliseconds(Int64(random.nextUnit() * 5000)))
            }
            invariants.checkSettled(driver.pool, waiting: driver.waitingSpawns)
        }

        // However it got here, SIGTERM and every worker's end (even after SIGKILL only) exit it exactly once.
        invariants.step = "seed \(seed) stop"
        if driver.pool.phase != .exited, !stalled { driver.send(.signalReceived(.terminate)) }
        var rounds = 0
        while driver.pool.phase != .exited, !stalled, rounds < 20 {
            // The loop hears every spawn's result in the end, the stop notwithstanding.
            while !driver.waitingSpawns.isEmpty { driver.answerSpawn(at: 0) }
            if random.nextUnit() < 0.5 { _ = driver.advanceToNextDeadline() }
            driver.exitAll(status: .signaled(9))
            rounds += 1
        }
        if !stalled {
            if driver.pool.phase != .exited { invariants.add("not exited 20 rounds after SIGTERM: \(driver.pool.phase), \(driver.pool.workers.count) workers") }
            if invariants.exits != 1 { invariants.add("\(invariants.exits) exit actions") }
        }
        return invariants.found
    }

    enum Step {
        case send(Event)
        /// Jump to the pool's next deadline (silence from every worker until then).
        case nextDeadline
        /// Let up to 5 s pass, firing every deadline on the way.
        case wait
    }

    static func randomStep(_ random: inout SplitMix64, _ pool: Pool, nextRelease: inout Int, systemdWatchdog: Duration?) -> Step {
        let pids = pool.workers.keys.sorted()
        let successors = pool.slots.compactMap { $0.successor?.pid }
        func pick(_ from: [Int32]) -> Int32 { from[Int(random.nextUnit() * Double(from.count))] }
        // Successors get their share of every event, as the roll depends on them.
        func anyPid() -> Int32? {
            if !successors.isEmpty, random.nextUnit() < 0.4 { return pick(successors) }
            return pids.isEmpty ? nil : pick(pids)
        }
        let stray = 9_000 + Int32(random.nextUnit() * 100)
        switch random.nextUnit() {
        case ..<0.13:
            // A worker sent SIGKILL ends soon; the others whenever they like.
            let killed = pool.workers.values.filter(\.killed).map(\.pid).sorted()
            guard let pid = !killed.isEmpty && random.nextUnit() < 0.5 ? pick(killed) : anyPid() else { return .nextDeadline }
            let status: ExitStatus = random.nextUnit() < 0.5 ? .exited(Int32(random.nextUnit() * 3)) : .signaled(random.nextUnit() < 0.5 ? 9 : 6)
            return .send(.exited(pid: pid, status: status))
        case ..<0.25:
            guard let pid = anyPid() else { return .nextDeadline }
            return .send(.notified(pid: pid, message: NotifyMessage(ready: true)))
        case ..<0.31:
            guard let pid = anyPid() else { return .nextDeadline }
            return .send(.notified(pid: pid, message: NotifyMessage(watchdog: true)))
        case ..<0.32:
            guard let pid = anyPid() else { return .nextDeadline }
            return .send(.notified(pid: pid, message: NotifyMessage(watchdogTrigger: true)))
        case ..<0.33:
            guard let pid = anyPid() else { return .nextDeadline }
            return .send(.notified(pid: pid, message: NotifyMessage(watchdog: true, watchdogInterval: .milliseconds(500 + Int64(random.nextUnit() * 3000)))))
        case ..<0.42:
            // Mostly the answer to a probe the pool asked for; sometimes a late one for a pid it did not.
            let asked = pool.workers.values.filter(\.health.probing).map(\.pid).sorted()
            let pid = !asked.isEmpty && random.nextUnit() < 0.8 ? pick(asked) : (anyPid() ?? stray)
            let ok = random.nextUnit() < 0.65
            return .send(.probed(pid: pid, result: ProbeResult(ok: ok, latency: .milliseconds(3), detail: ok ? "200" : "HTTP 500")))
        case ..<0.46:
            var usage: [Int32: UInt64] = [:]
            for pid in pids where random.nextUnit() < 0.6 { usage[pid] = random.nextUnit() < 0.4 ? 150 << 20 : 50 << 20 }
            return .send(.memorySampled(usage))
        case ..<0.54: return .nextDeadline
        case ..<0.62: return .wait
        case ..<0.66:
            nextRelease += 1
            return .send(.reloadRequested(release: nextRelease - 1, policy: randomPolicy(&random, systemdWatchdog: systemdWatchdog)))
        case ..<0.69:
            return .send(.restartRequested(slots: (0..<7).filter { _ in random.nextUnit() < 0.4 }))
        case ..<0.70: return .send(.reloadRejected(reason: "supervisor.conf:2: unknown key 'wrokers'"))
        case ..<0.74: return .send(.desiredCountChanged(Int(random.nextUnit() * 8)))
        case ..<0.76: return .send(.signalReceived(.ttin))
        case ..<0.78: return .send(.signalReceived(.ttou))
        case ..<0.80: return .send(.exited(pid: stray, status: .exited(1)))
        case ..<0.81: return .send(.notified(pid: stray, message: NotifyMessage(ready: true)))
        case ..<0.825: return .send(.signalReceived(.terminate))
        case ..<0.83: return .send(.signalReceived(.hangup))
        case ..<0.90:
            // /proc's answer for some workers, sampled or not: accepting, not yet, or unreadable.
            var samples: [Int32: AcceptingSample] = [:]
            for pid in pids where random.nextUnit() < 0.5 {
                let kind = random.nextUnit()
                samples[pid] = kind < 0.5 ? .accepting("accepting on fd 3") : kind < 0.9 ? .notYet : .unknown("gone")
            }
            if random.nextUnit() < 0.1 { samples[stray] = .accepting("accepting on fd 3") }
            return .send(.acceptingSampled(samples))
        case ..<0.93:
            // An upgrade asked for, or the answer of its check (the shell's, some time later): yes or no.
            guard let prepared = pool.upgradePreparation else {
                return .send(.requested(.upgrade(path: "/usr/bin/hyperglass", wait: random.nextUnit() < 0.5), by: .client(40)))
            }
            if random.nextUnit() < 0.5 { return .send(.upgradeChecked(path: "/usr/bin/hyperglass", newVersion: "0.2.0", for: prepared.requester)) }
            return .send(.upgradeFailed(reason: "cannot upgrade: /usr/bin/hyperglass refused to take over", for: prepared.requester))
        default: return .nextDeadline
        }
    }

    @Test("random event sequences never break the pool's invariants", arguments: 0..<8)
    func randomSequences(batch: Int) {
        var found: [String] = []
        for seed in UInt64(batch * 250)..<UInt64(batch * 250 + 250) {
            found += Self.run(seed: seed, steps: 300)
            if found.count >= 5 { break }
        }
        #expect(found.isEmpty, "\(found.prefix(5).joined(separator: "\n"))")
    }

    @Test("random event sequences with spawns answered on a later turn never break the pool's invariants", arguments: 0..<4)
    func randomSequencesWithLateSpawns(batch: Int) {
        var found: [String] = []
        for seed in UInt64(batch * 250)..<UInt64(batch * 250 + 250) {
            found += Self.run(seed: seed, steps: 300, lateSpawns: true)
            if found.count >= 5 { break }
        }
        #expect(found.isEmpty, "\(found.prefix(5).joined(separator: "\n"))")
    }
}
