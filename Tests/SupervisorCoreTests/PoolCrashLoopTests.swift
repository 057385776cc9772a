import Testing
@testable import SupervisorCore

@Suite("Pool: crash loops", .timeLimit(.minutes(1)))
struct PoolCrashLoopTests {
    /// Crashes `slot` and, if its restart is delayed, moves the clock to it.
    private func crashAndRestart(_ driver: inout PoolDriver, slot: Int = 0) {
        driver.exit(slot: slot)
        if let due = driver.pool.slots[slot].restartAt { driver.advance(by: due - driver.now) }
    }

    @Test("after crash_loop_threshold failures in a row, keep-trying logs a crash loop once and keeps restarting at the cap")
    func keepTrying() {
        var driver = PoolDriver()
        driver.start()
        for _ in 1...4 { crashAndRestart(&driver) }
        #expect(driver.history.logs(atLeast: .error).isEmpty)

        let fifth = driver.exit(slot: 0)
        #expect(fifth.logs(atLeast: .error) == ["crash loop: worker 0 failed 5 times in a row (last: exit status 1); retrying with backoff up to 30s"])
        #expect(fifth.exitCodes.isEmpty)
        #expect(driver.pool.crashLoopingSlots.map(\.id) == [0])
        #expect(driver.lastStatus == "0/1 workers ready; crash loop in worker 0 (5 failures in a row, last: exit status 1)")

        driver.advance(by: .seconds(8))
        #expect(driver.pid(ofSlot: 0) != nil)
        for _ in 1...6 { crashAndRestart(&driver) }
        // Failures 7 and later wait the whole cap.
        driver.exit(slot: 0)
        #expect(driver.pool.slots[0].restartAt == driver.now + .seconds(30))
        #expect(driver.history.logs(atLeast: .error).count == 1)
        #expect(driver.history.exitCodes.isEmpty)
        #expect(driver.pool.phase == .running)
    }

    @Test("a count wait cannot be met while a slot crash-loops: the reason names the slot; none once it is ready again")
    func countWaitFailsDuringCrashLoop() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        driver.readyAll()
        #expect(driver.pool.countWaitFailure == nil)
        for _ in 1...4 { crashAndRestart(&driver, slot: 1) }
        #expect(driver.pool.countWaitFailure == nil, "4 failures are not a crash loop yet")
        driver.exit(slot: 1)
        #expect(driver.pool.countWaitFailure == "1/2 workers ready, and worker 1 is crash-looping (5 failures in a row, last: exit status 1); the count stays 2, 'hyperglassctl status' shows the retries")
        if let due = driver.pool.slots[1].restartAt { driver.advance(by: due - driver.now) }
        driver.ready(slot: 1)
        #expect(driver.pool.countWaitFailure == nil)
    }

    @Test("a restart that fails in a crash-looping slot does not claim a previous worker keeps serving")
    func restartInCrashLoopSaysNoWorkerServed() {
        var driver = PoolDriver(desired: 1, policy: .with { $0.readiness = .notify })
        driver.start()
        for _ in 1...4 { crashAndRestart(&driver) }
        driver.exit(slot: 0)
        #expect(driver.pool.crashLoopingSlots.map(\.id) == [0])
        driver.send(.restartRequested(slots: [0]))
        guard let successor = driver.pool.slots[0].successor?.pid else { Issue.record("no successor started"); return }
        driver.send(.exited(pid: successor, status: .exited(1)))
        #expect(driver.pool.lastRoll?.succeeded == false)
        #expect(driver.pool.lastRoll?.summary == "restart stopped at worker 0 (1/1): the new worker exit status 1 before ready; no worker of that slot was serving, and it restarts as after any failure",
                "\(driver.pool.lastRoll?.summary ?? "no outcome")")
    }

    @Test("an upgrade refused in a pool crash-looping from its start says so, not 'try again once it is ready'")
    func upgradeRefusalNamesCrashLoop() {
        var driver = PoolDriver(desired: 1, policy: .with { $0.readiness = .notify })
        driver.start()
        #expect(driver.pool.upgradeRefusal == "cannot upgrade while the pool is starting; try again once it is ready")
        for _ in 1...4 { crashAndRestart(&driver) }
        driver.exit(slot: 0)
        #expect(driver.pool.upgradeRefusal == "cannot upgrade while the pool is starting: worker 0 is crash-looping (last: exit status 1 before ready); fix the workers, or restart the service to run the new program")
    }

    @Test("a crash-looping slot that comes back ready is no longer reported as looping")
    func loopEndsWhenReady() {
        var driver = PoolDriver()
        driver.start()
        for _ in 1...5 { crashAndRestart(&driver) }
        #expect(driver.pool.slots[0].failures == 5)
        #expect(driver.pool.crashLoopingSlots.isEmpty)
        #expect(driver.lastStatus == "1/1 workers ready")
    }

    @Test("with crash_loop = exit the supervisor drains the other workers and exits with status 1")
    func exitPolicyDrains() {
        var driver = PoolDriver(desired: 3, policy: .with { $0.crashLoop = .exit })
        driver.start()
        for _ in 1...4 { crashAndRestart(&driver) }
        let survivors = [driver.pid(ofSlot: 1)!, driver.pid(ofSlot: 2)!]

        let fifth = driver.exit(slot: 0)
        #expect(fifth.spawnedSlots.isEmpty)
        #expect(fifth.pids(sent: .terminate) == survivors)
        #expect(fifth.systemdNotices.contains(.stopping))
        #expect(fifth.logs(atLeast: .error).contains { $0.contains("crash_loop = exit") })
        #expect(fifth.exitCodes.isEmpty)
        #expect(driver.pool.phase == .stopping(exitCode: 1))

        let last = driver.exitAll()
        #expect(last.exitCodes == [1])
        #expect(last.spawnedSlots.isEmpty)
        #expect(driver.pool.phase == .exited)
    }

    @Test("with crash_loop = exit and no other workers the supervisor exits with status 1 at once")
    func exitPolicyAlone() {
        var driver = PoolDriver(policy: .with { $0.crashLoop = .exit; $0.crashLoopThreshold = 2 })
        driver.start()
        crashAndRestart(&driver)
        let second = driver.exit(slot: 0)
        #expect(second.exitCodes == [1])
        #expect(second.spawnedSlots.isEmpty)
        #expect(driver.pool.nextDeadline == nil)
    }

    @Test("when a crash-loop exit begins partway through a batch of spawns, the rest are neither adopted nor retried")
    func exitMidBatch() {
        // Core bug, fixed: the later spawns of the batch were adopted after the exit and left running,
        // and a later failure in the batch began the stop again (a second STOPPING=1 and .exit).
        var driver = PoolDriver(desired: 3, policy: .with { $0.crashLoop = .exit; $0.crashLoopThreshold = 1 })
        driver.spawnOutcome = { slot, _ in slot == 1 ? nil : "fork: out of memory" }
        let actions = driver.start()
        #expect(actions.exitCodes == [1])
        #expect(actions.spawnedSlots == [0, 1, 2])
        #expect(actions.systemdNotices.filter { $0 == .stopping }.count == 1)
        #expect(actions.pids(sent: .kill) == [100])
        #expect(driver.pool.workers.isEmpty)
        #expect(driver.pool.phase == .exited)
    }

    @Test("a spawn that fails while the pool drains is not retried")
    func spawnFailureWhileDraining() {
        var driver = PoolDriver(desired: 2, policy: .with { $0.crashLoop = .exit; $0.crashLoopThreshold = 1 })
        driver.spawnOutcome = { slot, _ in slot == 0 ? nil : "fork: out of memory" }
        driver.start()
        #expect(driver.pool.phase == .stopping(exitCode: 1))
        // Slot 1's failure began the stop; a stale report for it changes nothing either.
        let late = driver.send(.spawnFailed(slot: 1, generation: 2, reason: "late"))
        #expect(late.spawnedSlots.isEmpty)
        #expect(late.exitCodes.isEmpty)
        #expect(!late.systemdNotices.contains(.stopping))
        #expect(driver.pool.slots[1].failures == 1)
        #expect(driver.exit(slot: 0, status: .exited(0)).exitCodes == [1])
    }

    @Test("a spawn asked for before SIGTERM that fails during the drain is not restarted")
    func spawnFailureAfterTerminate() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        // Slot 1's restart is asked for just before the stop, and its failure is heard after it.
        driver.spawnsAnsweredLater = true
        driver.exit(slot: 1)
        driver.advance(by: .seconds(2))
        #expect(driver.waitingSpawns.count == 1)
        driver.send(.signalReceived(.terminate))
        driver.spawnOutcome = { _, _ in "fork: out of memory" }
        let late = driver.answerSpawn(at: 0)
        #expect(late.spawnedSlots.isEmpty)
        #expect(late.logs(atLeast: .error) == ["worker 1 could not start: fork: out of memory"])
        #expect(driver.pool.slots[1].restartAt == nil)
    }

    @Test("a worker whose spawn is reported during the drain is asked to stop at once")
    func spawnedWhileDraining() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        driver.exit(slot: 1)
        driver.exit(slot: 1)  // slot 1 now waits 1s and has no worker
        driver.send(.signalReceived(.terminate))
        let late = driver.send(.spawned(slot: 1, generation: 3, pid: 555))
        #expect(late.pids(sent: .terminate) == [555])
        #expect(driver.pool.workers[555]?.state == "draining")
    }

    @Test("spawn failures count towards the crash loop too")
    func spawnFailuresLoop() {
        var driver = PoolDriver(policy: .with { $0.crashLoop = .exit; $0.crashLoopThreshold = 3 })
        driver.spawnOutcome = { _, _ in "exec ./app: Permission denied" }
        driver.start()
        driver.advance(by: .seconds(1))
        #expect(driver.history.exitCodes == [1])
        #expect(driver.history.spawnedSlots.count == 3)
        #expect(driver.pool.phase == .exited)
    }
}
