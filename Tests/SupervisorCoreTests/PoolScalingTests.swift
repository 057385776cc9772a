import Testing
@testable import SupervisorCore

@Suite("Pool: scaling", .timeLimit(.minutes(1)))
struct PoolScalingTests {
    @Test("scaling up spawns the new slots and reports the pool whole when they are up")
    func scaleUp() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let actions = driver.send(.desiredCountChanged(4))
        #expect(actions.logs(atLeast: .notice).contains("scaling 2 → 4"))
        #expect(actions.filter { if case .spawn = $0 { true } else { false } } == [.spawn(slot: 2, generation: 1), .spawn(slot: 3, generation: 1)])
        #expect(actions.systemdNotices.contains(.status("scaling 2 → 4: 2/4 workers ready")))
        #expect(driver.pool.desired == 4)
        #expect(driver.pool.readyCount == 4)
        #expect(driver.lastStatus == "4/4 workers ready")
        #expect(driver.pool.scalingFrom == nil)
        #expect(actions.readyNotifications == 0)
    }

    @Test("scaling down sends SIGTERM to the highest slots, which are not restarted when they exit")
    func scaleDown() {
        var driver = PoolDriver(desired: 4)
        driver.start()
        let pids = (0..<4).map { driver.pid(ofSlot: $0)! }
        let actions = driver.send(.desiredCountChanged(2))
        #expect(actions.pids(sent: .terminate) == [pids[3], pids[2]])
        #expect(actions.spawnedSlots.isEmpty)
        #expect(driver.pool.desired == 2)
        #expect(driver.lastStatus == "scaling 4 → 2: 2/2 workers ready")
        #expect(!driver.pool.isSettled)

        let exit3 = driver.send(.exited(pid: pids[3], status: .exited(0)))
        let exit2 = driver.send(.exited(pid: pids[2], status: .signaled(15)))
        #expect((exit3 + exit2).spawnedSlots.isEmpty)
        #expect(exit2.logs(atLeast: .info).contains("worker 2 (pid \(pids[2])) stopped: killed by SIGTERM"))
        #expect(driver.pool.isSettled)
        #expect(driver.lastStatus == "2/2 workers ready")
        #expect(driver.pool.slots.allSatisfy { $0.failures == 0 })
        #expect(driver.pool.nextDeadline == nil)
    }

    @Test("removed workers that ignore SIGTERM are killed after the graceful timeout")
    func scaleDownKillsSurvivors() {
        var driver = PoolDriver(desired: 3)
        driver.start()
        let removed = driver.pid(ofSlot: 2)!
        driver.send(.desiredCountChanged(2))
        let kill = driver.advance(by: .seconds(30))
        #expect(kill.pids(sent: .kill) == [removed])
        #expect(driver.send(.exited(pid: removed, status: .signaled(9))).spawnedSlots.isEmpty)
        #expect(driver.pool.phase == .running)
    }

    @Test("SIGTTIN adds a worker and SIGTTOU removes the highest one")
    func ttinTtou() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let up = driver.send(.signalReceived(.ttin))
        #expect(up.spawnedSlots == [2])
        #expect(driver.pool.desired == 3)
        let newest = driver.pid(ofSlot: 2)!
        let down = driver.send(.signalReceived(.ttou))
        #expect(down.pids(sent: .terminate) == [newest])
        #expect(driver.pool.desired == 2)
    }

    @Test("SIGTTIN at max_workers and SIGTTOU at one worker change nothing but say why")
    func ttinTtouBounds() {
        var driver = PoolDriver(desired: 2, policy: .with { $0.maxWorkers = 2 })
        driver.start()
        let up = driver.send(.signalReceived(.ttin))
        #expect(up.logs(atLeast: .warning) == ["SIGTTIN: 3 workers is out of range: the count must be from 1 to max_workers (2)"])
        #expect(up.spawnedSlots.isEmpty)
        driver.send(.signalReceived(.ttou))
        let down = driver.send(.signalReceived(.ttou))
        #expect(down.logs(atLeast: .warning) == ["SIGTTOU: 0 workers is out of range: the count must be from 1 to max_workers (2)"])
        #expect(down.signals.isEmpty)
        #expect(driver.pool.desired == 1)
    }

    @Test("a desired count of zero or above max_workers is refused with the reason", arguments: [0, -1, 9])
    func outOfBounds(count: Int) {
        var driver = PoolDriver(desired: 3, policy: .with { $0.maxWorkers = 8 })
        driver.start()
        #expect(driver.send(.desiredCountChanged(count)) == [.reply(to: 0, .refused("\(count) workers is out of range: the count must be from 1 to max_workers (8)"))])
        #expect(driver.pool.desired == 3)
    }

    @Test("the count the pool already has is accepted and changes nothing")
    func unchangedCount() {
        var driver = PoolDriver(desired: 3, policy: .with { $0.maxWorkers = 8 })
        driver.start()
        #expect(driver.send(.desiredCountChanged(3)) == [.reply(to: 0, .workers(previous: 3, desired: 3))])
    }

    @Test("scaling up to max_workers exactly is allowed")
    func upToMax() {
        var driver = PoolDriver(desired: 1, policy: .with { $0.maxWorkers = 8 })
        driver.start()
        #expect(driver.send(.desiredCountChanged(8)).spawnedSlots == Array(1..<8))
    }

    @Test("the pool does not scale while it is stopping")
    func noScalingWhileStopping() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        driver.send(.signalReceived(.terminate))
        let actions = driver.send(.desiredCountChanged(5)) + driver.send(.signalReceived(.ttin))
        #expect(actions.spawnedSlots.isEmpty)
        #expect(actions.replies == [.refused("cannot change the worker count: the supervisor is stopping")])
        #expect(actions.logs(atLeast: .warning) == ["SIGTTIN: cannot change the worker count: the supervisor is stopping"])
        #expect(driver.pool.desired == 2)
    }

    @Test("removing a slot that waits for its restart cancels the restart")
    func scaleDownCancelsRestart() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        driver.exit(slot: 1)
        driver.exit(slot: 1)
        #expect(driver.pool.nextDeadline != nil)
        let actions = driver.send(.desiredCountChanged(1))
        #expect(actions.signals.isEmpty)
        #expect(driver.pool.nextDeadline == nil)
        #expect(driver.advance(by: .seconds(60)).spawnedSlots.isEmpty)
        #expect(driver.lastStatus == "1/1 workers ready")
    }

    @Test("a slot removed and added back gets a new worker, and the old one's exit does not disturb it")
    func removeThenAddBack() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let old = driver.pid(ofSlot: 1)!
        driver.send(.desiredCountChanged(1))
        let up = driver.send(.desiredCountChanged(2))
        // Numbered after the removed slot's starts: a late answer to one of those is never taken for this one.
        #expect(up.contains(.spawn(slot: 1, generation: 2)))
        let new = driver.pid(ofSlot: 1)!
        #expect(new != old)
        #expect(driver.pool.workers.values.count { $0.slot == 1 && !$0.isStopping } == 1)

        let exit = driver.send(.exited(pid: old, status: .exited(0)))
        #expect(exit.spawnedSlots.isEmpty)
        #expect(driver.pid(ofSlot: 1) == new)
        #expect(driver.pool.slots[1].failures == 0)
        #expect(driver.pool.isSettled)
    }

    @Test("while scaling up in notify mode STATUS shows where the pool comes from until all are ready")
    func scalingStatus() {
        var driver = PoolDriver(desired: 4, policy: .with { $0.readiness = .notify })
        driver.start()
        driver.readyAll()
        driver.send(.desiredCountChanged(16))
        #expect(driver.lastStatus == "scaling 4 → 16: 4/16 workers ready")
        driver.ready(slot: 4)
        #expect(driver.lastStatus == "scaling 4 → 16: 5/16 workers ready")
        driver.readyAll()
        #expect(driver.lastStatus == "16/16 workers ready")
        #expect(driver.history.readyNotifications == 1)
    }

    @Test("scaling before the pool was ever ready delays READY=1 until the new count is ready")
    func scalingDuringStartup() {
        var driver = PoolDriver(desired: 2, policy: .with { $0.readiness = .notify })
        driver.start()
        driver.readyAll()
        #expect(driver.history.readyNotifications == 1)

        var fresh = PoolDriver(desired: 2, policy: .with { $0.readiness = .notify })
        fresh.start()
        fresh.ready(slot: 0)
        fresh.send(.desiredCountChanged(3))
        fresh.ready(slot: 1)
        #expect(fresh.history.readyNotifications == 0)
        fresh.ready(slot: 2)
        #expect(fresh.history.readyNotifications == 1)
    }
}
