import Testing
@testable import SupervisorCore

/// Random, seeded event sequences against invariants that must hold whatever happens.
@Suite("Pool: invariants under random events", .timeLimit(.minutes(1)))
struct PoolPropertyTests {
    /// What went wrong, with the seed and step to replay it.
    final class Violations {
        var found: [String] = []
        var exitSeen = false
        var spawnedPids: Set<Int32> = []
        func add(_ text: String) { if found.count < 20 { found.append(text) } }
    }

    static func randomPolicy(_ random: inout SplitMix64) -> PoolPolicy {
        var policy = PoolPolicy()
        policy.readiness = random.nextUnit() < 0.5 ? .exec : .notify
        policy.readyTimeout = .seconds(3)
        policy.gracefulTimeout = .seconds(5)
        policy.crashLoop = random.nextUnit() < 0.5 ? .keepTrying : .exit
        policy.crashLoopThreshold = 1 + Int(random.nextUnit() * 5)
        policy.maxWorkers = 6
        if random.nextUnit() < 0.3 { policy.systemdWatchdogInterval = .seconds(2) }
        return policy
    }

    /// Checks one `handle` call against the invariants.
    static func check(_ event: Event, _ actions: [Action], _ pool: Pool, _ v: Violations, _ step: String) {
        if case let .spawned(_, _, pid) = event { v.spawnedPids.insert(pid) }
        var spawnedHere: Set<Int> = []
        for action in actions {
            switch action {
            case let .spawn(slot, generation, _):
                if !pool.slots.indices.contains(slot) { v.add("\(step): spawn of slot \(slot), which does not exist (desired \(pool.desired)) after \(event)") }
                else if generation != pool.slots[slot].generation + 1 { v.add("\(step): spawn of slot \(slot) generation \(generation), expected \(pool.slots[slot].generation + 1)") }
                if !spawnedHere.insert(slot).inserted { v.add("\(step): two spawns of slot \(slot) in one batch after \(event)") }
                if v.exitSeen { v.add("\(step): spawn after exit, on \(event)") }
                switch pool.phase {
                case .stopping, .exited: v.add("\(step): spawn of slot \(slot) while \(pool.phase), on \(event)")
                default: break
                }
            case .exit:
                if v.exitSeen { v.add("\(step): a second exit on \(event)") }
                v.exitSeen = true
            case let .signal(pid, _):
                if !v.spawnedPids.contains(pid) { v.add("\(step): signal to pid \(pid), never a worker") }
            default: break
            }
        }

        var liveBySlot: [Int: Int] = [:]
        for worker in pool.workers.values where !worker.isStopping {
            liveBySlot[worker.slot, default: 0] += 1
            if !pool.slots.indices.contains(worker.slot) || pool.slots[worker.slot].pid != worker.pid {
                v.add("\(step): live pid \(worker.pid) is not the current worker of slot \(worker.slot) after \(event)")
            }
        }
        for (slot, count) in liveBySlot where count > 1 { v.add("\(step): \(count) live workers in slot \(slot) after \(event)") }
        for slot in pool.slots {
            if let pid = slot.pid, pool.workers[pid]?.slot != slot.id { v.add("\(step): slot \(slot.id) points at pid \(pid), which is not its worker") }
        }
        if pool.phase == .exited, pool.workers.values.contains(where: { !$0.isStopping }) {
            v.add("\(step): a worker is left running unstopped after exit, on \(event)")
        }
    }

    static func run(seed: UInt64, steps: Int) -> [String] {
        var random = SplitMix64(seed: seed)
        let violations = Violations()
        var driver = PoolDriver(desired: 1 + Int(random.nextUnit() * 4), policy: randomPolicy(&random), seed: seed)
        var spawnRandom = SplitMix64(seed: seed ^ 0xABCD)
        let failRate = random.nextUnit() * 0.5
        driver.spawnOutcome = { _, _ in spawnRandom.nextUnit() < failRate ? "fork: out of memory" : nil }
        var stepName = "seed \(seed) step 0"
        driver.observer = { event, actions, pool in check(event, actions, pool, violations, stepName) }
        driver.start()

        for step in 1...steps {
            stepName = "seed \(seed) step \(step)"
            if driver.pool.phase == .exited { break }
            let pids = driver.pool.workers.keys.sorted()
            let roll = random.nextUnit()
            switch roll {
            case ..<0.25 where !pids.isEmpty:
                let pid = pids[Int(random.nextUnit() * Double(pids.count))]
                let status: ExitStatus = random.nextUnit() < 0.5 ? .exited(Int32(random.nextUnit() * 3)) : .signaled(9)
                driver.send(.exited(pid: pid, status: status))
            case ..<0.40 where !pids.isEmpty:
                let pid = pids[Int(random.nextUnit() * Double(pids.count))]
                driver.send(.notified(pid: pid, message: NotifyMessage(ready: true)))
            case ..<0.55:
                _ = driver.advanceToNextDeadline()
            case ..<0.65:
                driver.advance(by: .milliseconds(Int64(random.nextUnit() * 5000)))
            case ..<0.72:
                driver.send(.desiredCountChanged(Int(random.nextUnit() * 8)))
            case ..<0.78:
                driver.send(.signalReceived(.ttin))
            case ..<0.84:
                driver.send(.signalReceived(.ttou))
            case ..<0.88:
                driver.send(.exited(pid: 9_000 + Int32(random.nextUnit() * 100), status: .exited(1)))
            case ..<0.91:
                driver.send(.notified(pid: 9_000 + Int32(random.nextUnit() * 100), message: NotifyMessage(ready: true)))
            case ..<0.93:
                driver.send(.signalReceived(.terminate))
            case ..<0.94:
                driver.send(.signalReceived(.hangup))
            default:
                _ = driver.advanceToNextDeadline()
            }
            // Between events no slot is forgotten: it has a worker or a restart on the clock.
            if driver.pool.phase == .starting || driver.pool.phase == .running {
                for slot in driver.pool.slots where slot.pid == nil && slot.restartAt == nil {
                    violations.add("\(stepName): slot \(slot.id) has neither a worker nor a restart due")
                }
            }
        }
        return violations.found
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

    @Test("a pool told to stop and drained always exits exactly once")
    func stopAlwaysExits() {
        for seed in UInt64(0)..<200 {
            var random = SplitMix64(seed: seed)
            var driver = PoolDriver(desired: 1 + Int(random.nextUnit() * 4), policy: Self.randomPolicy(&random), seed: seed)
            driver.start()
            for _ in 0..<Int(random.nextUnit() * 10) {
                if let pid = driver.pool.workers.keys.sorted().first { driver.send(.exited(pid: pid, status: .exited(1))) }
                _ = driver.advanceToNextDeadline()
            }
            if driver.pool.phase != .exited { driver.send(.signalReceived(.terminate)) }
            // Workers ignore SIGTERM; the graceful timeout must kill them, then they are reaped.
            var rounds = 0
            while driver.pool.phase != .exited, rounds < 20 {
                _ = driver.advanceToNextDeadline()
                driver.exitAll(status: .signaled(9))
                rounds += 1
            }
            #expect(driver.pool.phase == .exited, "seed \(seed)")
            #expect(driver.history.exitCodes.count == 1, "seed \(seed)")
        }
    }
}
