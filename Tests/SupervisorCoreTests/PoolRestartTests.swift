import Testing
@testable import SupervisorCore

@Suite("Pool: restarts and backoff", .timeLimit(.minutes(1)))
struct PoolRestartTests {
    /// Crashes slot 0 and returns how long the pool waited before spawning it again.
    private func crashAndMeasure(_ driver: inout PoolDriver, slot: Int = 0) -> Duration {
        let actions = driver.exit(slot: slot)
        if actions.spawnedSlots.contains(slot) { return .zero }
        let before = driver.now
        guard let due = driver.pool.nextDeadline else {
            Issue.record("no restart was scheduled after the crash")
            return .zero
        }
        let restart = driver.advanceToNextDeadline() ?? []
        #expect(restart.spawnedSlots == [slot])
        return due - before
    }

    @Test("a crashed worker is restarted at once the first time, then after 1s, 2s, 4s ... capped at 30s")
    func backoffSequence() {
        var driver = PoolDriver()
        driver.start()
        let waits = (1...9).map { _ in crashAndMeasure(&driver) }
        #expect(waits == [.zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16),
                          .seconds(30), .seconds(30), .seconds(30)])
    }

    @Test("nothing is spawned before the backoff has passed")
    func noEarlySpawn() {
        var driver = PoolDriver()
        driver.start()
        driver.exit(slot: 0)
        driver.exit(slot: 0)  // second failure: 1s
        let early = driver.advance(by: .milliseconds(999))
        #expect(early.spawnedSlots.isEmpty)
        #expect(driver.pid(ofSlot: 0) == nil)
        let due = driver.advance(by: .milliseconds(1))
        #expect(due.spawnedSlots == [0])
        #expect(driver.pid(ofSlot: 0) != nil)
    }

    @Test("with jitter, each restart waits within ±10% of its base delay, and never beyond the cap")
    func jitteredRestarts() {
        var driver = PoolDriver(policy: PoolPolicy(), seed: 99)
        driver.start()
        let base = BackoffPolicy()
        for failures in 1...12 {
            let wait = crashAndMeasure(&driver)
            let expected = base.baseDelay(afterFailures: failures)
            #expect(wait >= expected.scaled(by: 0.9), "failure \(failures)")
            #expect(wait <= min(expected.scaled(by: 1.1), base.maximum), "failure \(failures)")
        }
    }

    @Test("different seeds spread the restarts of a pool that failed together")
    func jitterSpreads() {
        var waits: Set<Int64> = []
        for seed in UInt64(1)...5 {
            var driver = PoolDriver(policy: PoolPolicy(), seed: seed)
            driver.start()
            driver.exit(slot: 0)
            driver.exit(slot: 0)
            waits.insert((driver.pool.nextDeadline! - driver.now).nanoseconds)
        }
        #expect(waits.count > 1)
    }

    @Test("a worker that stayed ready for backoff_reset (60s) wipes the slate: the next restart is immediate")
    func resetAfterStableRun() {
        var driver = PoolDriver()
        driver.start()
        for _ in 1...4 { _ = crashAndMeasure(&driver) }
        #expect(driver.pool.slots[0].failures == 4)
        driver.advance(by: .seconds(60))
        let actions = driver.exit(slot: 0)
        #expect(actions.spawnedSlots == [0])
        #expect(driver.pool.slots[0].failures == 1)
    }

    @Test("a worker that was ready for less than backoff_reset keeps the backoff growing")
    func noResetBeforeBackoffReset() {
        var driver = PoolDriver()
        driver.start()
        for _ in 1...4 { _ = crashAndMeasure(&driver) }
        driver.advance(by: .seconds(59))
        #expect(crashAndMeasure(&driver) == .seconds(8))
    }

    @Test("in notify mode the reset counts from READY, not from the start")
    func resetCountsFromReady() {
        var driver = PoolDriver(policy: .with { $0.readiness = .notify; $0.readyTimeout = .seconds(600) })
        driver.start()
        driver.ready(slot: 0)
        for _ in 1...3 {
            driver.exit(slot: 0)
            if let due = driver.pool.slots[0].restartAt { driver.advance(by: due - driver.now) }
            driver.ready(slot: 0)
        }
        #expect(driver.pool.slots[0].failures == 3)
        driver.advance(by: .seconds(50))
        driver.ready(slot: 0)  // a second READY=1 does not move readyAt
        driver.advance(by: .seconds(10))
        #expect(driver.exit(slot: 0).spawnedSlots == [0])
        #expect(driver.pool.slots[0].failures == 1)

        // A worker up for 100s but ready only for the last 30s does not reset the count.
        driver.advance(by: .seconds(70))
        driver.ready(slot: 0)
        driver.advance(by: .seconds(30))
        driver.exit(slot: 0)
        #expect(driver.pool.slots[0].failures == 2)
        #expect(driver.pool.nextDeadline == driver.now + .seconds(1))
    }

    @Test("a worker that exits with status 0 unasked is restarted too")
    func cleanExitIsRestarted() {
        var driver = PoolDriver()
        driver.start()
        let actions = driver.exit(slot: 0, status: .exited(0))
        #expect(actions.spawnedSlots == [0])
        #expect(actions.logs(atLeast: .warning).contains { $0.contains("exited unexpectedly: exit status 0") })
    }

    @Test("an exit asks no signal for the dead worker: the shell killed its process group just before the reap")
    func exitAsksNoSignal() {
        var driver = PoolDriver()
        driver.start()
        let actions = driver.exit(slot: 0, status: .signaled(11))
        #expect(actions.signals.isEmpty, "\(actions.signals)")
        #expect(actions.logs().contains { $0.contains("killed by SIGSEGV") })
        driver.send(.signalReceived(.terminate))
        #expect(driver.exitAll().signals.isEmpty)
    }

    @Test("each restart uses the next generation and a new pid")
    func generations() {
        var driver = PoolDriver()
        driver.start()
        let first = driver.pid(ofSlot: 0)!
        let actions = driver.exit(slot: 0)
        #expect(actions.contains(.spawn(slot: 0, generation: 2)))
        #expect(driver.pool.slots[0].generation == 2)
        #expect(driver.pid(ofSlot: 0) != first)
        #expect(driver.pool.slots[0].restarts == 1)
        #expect(driver.pool.slots[0].lastExit == .exited(1))
    }

    @Test("one slot's crashes do not disturb the other slots")
    func crashesAreIsolated() {
        var driver = PoolDriver(desired: 3)
        driver.start()
        let others = [driver.pid(ofSlot: 0)!, driver.pid(ofSlot: 2)!]
        for _ in 1...5 { _ = crashAndMeasure(&driver, slot: 1) }
        #expect([driver.pid(ofSlot: 0)!, driver.pid(ofSlot: 2)!] == others)
        #expect(driver.pool.slots[0].failures == 0)
        #expect(driver.history.signals.allSatisfy { !others.contains($0.pid) })
    }

    @Test("a spawn that fails counts as a failure and backs off instead of looping")
    func spawnFailureBacksOff() {
        var driver = PoolDriver()
        driver.spawnOutcome = { _, _ in "exec /nope: No such file or directory" }
        let start = driver.start()
        // The first restart is immediate, then the backoff holds it.
        #expect(start.spawnedSlots == [0, 0])
        #expect(driver.pool.slots[0].failures == 2)
        #expect(driver.pool.nextDeadline == driver.now + .seconds(1))
        #expect(start.logs(atLeast: .error).contains("worker 0 could not start: exec /nope: No such file or directory"))
        #expect(driver.lastStatus == "0/1 workers ready; restarting worker 0 in 1s (exec /nope: No such file or directory)")

        // Over a minute of failing, only a handful of attempts: 0, 0, 1, 3, 7, 15, 31 (+30s ...).
        driver.advance(by: .seconds(60))
        #expect(driver.history.spawnedSlots.count == 7)
    }

    @Test("a slot whose spawn failed recovers when a later spawn succeeds")
    func spawnRecovers() {
        var driver = PoolDriver()
        var failuresLeft = 2
        driver.spawnOutcome = { _, _ in
            defer { failuresLeft -= 1 }
            return failuresLeft > 0 ? "fork: Resource temporarily unavailable" : nil
        }
        driver.start()  // fails, fails again at once, then waits 1s
        #expect(driver.pid(ofSlot: 0) == nil)
        driver.advance(by: .seconds(1))
        #expect(driver.pid(ofSlot: 0) != nil)
        #expect(driver.lastStatus == "1/1 workers ready")
    }

    @Test("a stale spawnFailed for an older generation is ignored")
    func staleSpawnFailure() {
        var driver = PoolDriver()
        driver.start()
        let actions = driver.send(.spawnFailed(slot: 0, generation: 1, reason: "late"))
        #expect(actions.spawnedSlots.isEmpty)
        #expect(driver.pool.slots[0].failures == 0)
    }

    @Test("an exit from a pid that is not a worker is ignored")
    func unknownExit() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let before = driver.pool.slots
        let actions = driver.send(.exited(pid: 4242, status: .exited(1)))
        #expect(actions.spawnedSlots.isEmpty)
        #expect(actions.signals.isEmpty)
        #expect(actions.logs(atLeast: .info).isEmpty)
        #expect(driver.pool.slots == before)
    }

    @Test("a second exit report for the same pid is ignored")
    func duplicateExit() {
        var driver = PoolDriver()
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.exit(slot: 0)
        let again = driver.send(.exited(pid: pid, status: .exited(1)))
        #expect(again.spawnedSlots.isEmpty)
        #expect(driver.pool.slots[0].failures == 1)
    }

    @Test("a spawned report for a slot that already has a worker kills the stray instead of adopting it")
    func strayWorker() {
        var driver = PoolDriver()
        driver.start()
        let current = driver.pid(ofSlot: 0)
        let actions = driver.send(.spawned(slot: 0, generation: 1, pid: 999))
        #expect(actions.pids(sent: .kill) == [999])
        #expect(driver.pid(ofSlot: 0) == current)
        #expect(driver.pool.workers[999] == nil)
    }
}
