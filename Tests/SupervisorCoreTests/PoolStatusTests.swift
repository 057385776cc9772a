import Testing
@testable import SupervisorCore

@Suite("Pool: STATUS and systemd", .timeLimit(.minutes(1)))
struct PoolStatusTests {
    @Test("a whole pool reports N/N workers ready")
    func allReady() {
        var driver = PoolDriver(desired: 4)
        driver.start()
        #expect(driver.lastStatus == "4/4 workers ready")
        #expect(driver.pool.statusText(at: driver.now) == "4/4 workers ready")
    }

    @Test("a pending restart is shown with its countdown and the reason")
    func restartingStatus() {
        var driver = PoolDriver(desired: 3, policy: .with { $0.readiness = .notify })
        driver.start()
        driver.ready(slot: 0)
        driver.ready(slot: 1)
        for _ in 1...4 {
            driver.exit(slot: 2)
            if driver.pid(ofSlot: 2) == nil, driver.pool.slots[2].failures < 4 {
                driver.advance(by: driver.pool.slots[2].restartAt! - driver.now)
            }
        }
        #expect(driver.lastStatus == "2/3 workers ready; restarting worker 2 in 4s (exit status 1 before ready)")
        #expect(driver.pool.statusText(at: driver.now + .milliseconds(1500)) == "2/3 workers ready; restarting worker 2 in 3s (exit status 1 before ready)")
        #expect(driver.pool.statusText(at: driver.now + .seconds(10)) == "2/3 workers ready; restarting worker 2 in 0s (exit status 1 before ready)")
    }

    @Test("a worker that failed after being ready is reported without 'before ready'")
    func restartingAfterReady() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        driver.exit(slot: 1, status: .signaled(11))
        driver.exit(slot: 1, status: .signaled(11))
        #expect(driver.lastStatus == "1/2 workers ready; restarting worker 1 in 1s (killed by SIGSEGV)")
    }

    @Test("with two slots waiting, the sooner restart is shown")
    func soonestRestart() {
        var driver = PoolDriver(desired: 3)
        driver.start()
        for _ in 1...3 { driver.exit(slot: 0); if driver.pid(ofSlot: 0) == nil, driver.pool.slots[0].failures < 3 { driver.advance(by: .seconds(1)) } }
        // slot 0 waits 2s; slot 1 now waits 1s.
        driver.exit(slot: 1)
        driver.exit(slot: 1)
        #expect(driver.lastStatus == "1/3 workers ready; restarting worker 1 in 1s (exit status 1)")
    }

    @Test("during a drain STATUS counts the workers left")
    func drainingStatus() {
        var driver = PoolDriver(desired: 3)
        driver.start()
        driver.send(.signalReceived(.terminate))
        #expect(driver.lastStatus == "draining 3 workers")
        driver.exit(slot: 0, status: .exited(0))
        driver.exit(slot: 1, status: .exited(0))
        #expect(driver.lastStatus == "draining 1 worker")
        driver.exit(slot: 2, status: .exited(0))
        #expect(driver.lastStatus == "stopped")
    }

    @Test("STATUS is sent only when its words change")
    func statusOnlyOnChange() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let count = driver.history.systemdDatagrams.count
        driver.send(.exited(pid: 777, status: .exited(0)))
        driver.send(.notified(pid: driver.pid(ofSlot: 0)!, message: NotifyMessage(status: "busy")))
        driver.advance(by: .seconds(100))
        #expect(driver.history.systemdDatagrams.count == count)
    }

    @Test("the first STATUS comes before READY=1 is possible, while workers start")
    func startingStatus() {
        var driver = PoolDriver(desired: 2, policy: .with { $0.readiness = .notify })
        let actions = driver.start()
        #expect(actions.lastStatus == "0/2 workers ready")
        driver.ready(slot: 0)
        #expect(driver.lastStatus == "1/2 workers ready")
    }

    @Test("with a systemd watchdog, WATCHDOG=1 goes up every half interval")
    func watchdogPings() {
        var driver = PoolDriver(policy: .with { $0.systemdWatchdogInterval = .seconds(10) })
        driver.start()
        #expect(driver.pool.nextDeadline == PoolDriver.epoch + .seconds(10))
        let pings = driver.advance(by: .seconds(35))
        #expect(pings.systemdDatagrams == [[.watchdog], [.watchdog], [.watchdog]])
        #expect(driver.pool.nextDeadline == PoolDriver.epoch + .seconds(40))
    }

    @Test("without a systemd watchdog an idle pool asks for no wake-up at all")
    func idleIsIdle() {
        var driver = PoolDriver(desired: 4)
        driver.start()
        #expect(driver.pool.nextDeadline == nil)
    }

    @Test("the pool policy takes its values from the settings and halves the watchdog interval")
    func policyFromSettings() {
        var settings = Settings()
        settings.readiness = .notify
        settings.readyTimeout = .seconds(5)
        settings.gracefulTimeout = .seconds(7)
        settings.crashLoop = .exit
        settings.crashLoopThreshold = 9
        settings.maxWorkers = 12
        settings.backoff.maximum = .seconds(10)
        let policy = PoolPolicy(settings: settings, systemdWatchdog: .seconds(20))
        #expect(policy.readiness == .notify)
        #expect(policy.readyTimeout == .seconds(5))
        #expect(policy.gracefulTimeout == .seconds(7))
        #expect(policy.crashLoop == .exit)
        #expect(policy.crashLoopThreshold == 9)
        #expect(policy.maxWorkers == 12)
        #expect(policy.backoff.maximum == .seconds(10))
        #expect(policy.systemdWatchdogInterval == .seconds(10))
        #expect(PoolPolicy(settings: settings, systemdWatchdog: nil).systemdWatchdogInterval == nil)
    }

    @Test("worker counts: auto is twice the CPUs, one in debug mode")
    func workerCount() {
        #expect(WorkerCount.auto.resolve(onlineCPUs: 4, debug: false) == 8)
        #expect(WorkerCount.auto.resolve(onlineCPUs: 4, debug: true) == 1)
        #expect(WorkerCount.auto.resolve(onlineCPUs: 0, debug: false) == 1)
        #expect(WorkerCount.fixed(3).resolve(onlineCPUs: 64, debug: true) == 3)
    }
}
