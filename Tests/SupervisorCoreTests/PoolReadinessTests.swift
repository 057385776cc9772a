import Testing
@testable import SupervisorCore

@Suite("Pool: readiness", .timeLimit(.minutes(1)))
struct PoolReadinessTests {
    let notify = PoolPolicy.with { $0.readiness = .notify }

    @Test("in exec mode a worker is ready as soon as it is spawned, and systemd hears READY=1 at once")
    func execReadyAtSpawn() {
        var driver = PoolDriver(desired: 3)
        let actions = driver.start()
        #expect(driver.pool.readyCount == 3)
        #expect(actions.readyNotifications == 1)
        #expect(actions.logs(atLeast: .notice).contains("3/3 workers ready"))
        #expect(driver.pool.phase == .running)
        #expect(driver.pool.nextDeadline == nil)
    }

    @Test("in notify mode a worker is ready only when it sends READY=1")
    func notifyWaitsForReady() {
        var driver = PoolDriver(desired: 2, policy: notify)
        let start = driver.start()
        #expect(driver.pool.readyCount == 0)
        #expect(start.readyNotifications == 0)
        #expect(driver.pool.phase == .starting)

        let first = driver.ready(slot: 0)
        #expect(driver.pool.readyCount == 1)
        #expect(first.readyNotifications == 0)
        #expect(first.logs().contains { $0.hasPrefix("worker 0 ready (pid \(driver.pid(ofSlot: 0)!)") })

        let second = driver.ready(slot: 1)
        #expect(second.readyNotifications == 1)
        #expect(driver.pool.phase == .running)
    }

    @Test("READY=1 from a pid that is not the worker does not make the worker ready")
    func readyFromOtherPid() {
        var driver = PoolDriver(policy: notify)
        driver.start()
        let actions = driver.send(.notified(pid: 31337, message: NotifyMessage(ready: true)))
        #expect(driver.pool.readyCount == 0)
        #expect(actions.readyNotifications == 0)
        #expect(actions.logs(atLeast: .info).isEmpty)
    }

    @Test("one worker's READY=1 does not count for another slot")
    func readyIsPerPid() {
        var driver = PoolDriver(desired: 2, policy: notify)
        driver.start()
        driver.ready(slot: 0)
        driver.ready(slot: 0)
        #expect(driver.pool.readyCount == 1)
        #expect(driver.pool.workers[driver.pid(ofSlot: 1)!]?.readyAt == nil)
        #expect(driver.history.readyNotifications == 0)
    }

    @Test("a notification without READY=1 only records the worker's status")
    func statusOnly() {
        var driver = PoolDriver(policy: notify)
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.send(.notified(pid: pid, message: NotifyMessage(parsing: "READY=0\nSTATUS=loading models")))
        #expect(driver.pool.readyCount == 0)
        #expect(driver.pool.workers[pid]?.status == "loading models")
        #expect(driver.pool.workers[pid]?.state == "starting")
    }

    @Test("in exec mode READY=1 from a worker changes nothing")
    func readyIgnoredInExecMode() {
        var driver = PoolDriver()
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        let readyAt = driver.pool.workers[pid]?.readyAt
        driver.advance(by: .seconds(5))
        driver.ready(slot: 0)
        #expect(driver.pool.workers[pid]?.readyAt == readyAt)
    }

    @Test("systemd hears READY=1 exactly once, however often the pool becomes whole again")
    func readyOnce() {
        var driver = PoolDriver(desired: 2, policy: notify)
        driver.start()
        driver.readyAll()
        for _ in 1...3 {
            driver.exit(slot: 1)
            if let due = driver.pool.slots[1].restartAt { driver.advance(by: due - driver.now) }
            driver.ready(slot: 1)
        }
        driver.send(.desiredCountChanged(3))
        driver.ready(slot: 2)
        #expect(driver.pool.readyCount == 3)
        #expect(driver.history.readyNotifications == 1)
        // Becoming whole again is logged each time, though.
        #expect(driver.history.logs(atLeast: .notice).filter { $0.hasSuffix("workers ready") }.count == 5)
    }

    @Test("a worker not ready within ready_timeout is killed with SIGKILL and counted as a failure")
    func readyTimeout() {
        var driver = PoolDriver(policy: notify)
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        #expect(driver.pool.nextDeadline == PoolDriver.epoch + .seconds(60))

        #expect(driver.advance(by: .milliseconds(59_999)).isEmpty)
        let kill = driver.advance(by: .milliseconds(1))
        #expect(kill.pids(sent: .kill) == [pid])
        #expect(kill.logs(atLeast: .warning).contains("worker 0 (pid \(pid)) was not ready within 1m (ready_timeout); killing it"))
        #expect(driver.pool.workers[pid]?.state == "killing")
        // Killed once: no further deadline for it while it dies.
        #expect(driver.pool.nextDeadline == nil)

        let exit = driver.send(.exited(pid: pid, status: .signaled(9)))
        #expect(exit.logs(atLeast: .warning).contains("worker 0 (pid \(pid)) exited unexpectedly: not ready within 1m before ready"))
        #expect(driver.pool.slots[0].failures == 1)
        #expect(exit.spawnedSlots == [0])
    }

    @Test("repeated ready timeouts back off like crashes")
    func readyTimeoutBacksOff() {
        var driver = PoolDriver(policy: .with { $0.readiness = .notify; $0.readyTimeout = .seconds(10) })
        driver.start()
        driver.advance(by: .seconds(10))
        driver.send(.exited(pid: driver.pool.workers.keys.first!, status: .signaled(9)))
        driver.advance(by: .seconds(10))
        driver.send(.exited(pid: driver.pool.workers.keys.first!, status: .signaled(9)))
        #expect(driver.pool.slots[0].failures == 2)
        #expect(driver.pool.slots[0].restartAt == driver.now + .seconds(1))
        #expect(driver.lastStatus == "0/1 workers ready; restarting worker 0 in 1s (not ready within 10s before ready)")
    }

    @Test("a worker that is ready in time is never killed by the ready timeout")
    func readyInTime() {
        var driver = PoolDriver(policy: notify)
        driver.start()
        driver.advance(by: .seconds(59))
        driver.ready(slot: 0)
        #expect(driver.pool.nextDeadline == nil)
        #expect(driver.advance(by: .seconds(600)).signals.isEmpty)
    }

    @Test("READY=1 from a worker that is being stopped does not make it ready")
    func readyWhileDraining() {
        var driver = PoolDriver(desired: 2, policy: notify)
        driver.start()
        driver.send(.signalReceived(.terminate))
        driver.readyAll()
        #expect(driver.pool.readyCount == 0)
        #expect(driver.history.readyNotifications == 0)
    }
}
