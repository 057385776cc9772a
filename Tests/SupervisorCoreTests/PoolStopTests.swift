import Testing
@testable import SupervisorCore

@Suite("Pool: stopping", .timeLimit(.minutes(1)))
struct PoolStopTests {
    @Test("SIGTERM sends STOPPING=1 to systemd and SIGTERM to every worker")
    func terminateDrains() {
        var driver = PoolDriver(desired: 3)
        driver.start()
        let pids = (0..<3).map { driver.pid(ofSlot: $0)! }
        let actions = driver.send(.signalReceived(.terminate))
        #expect(actions.systemdDatagrams.first == [.stopping, .extendTimeout(.seconds(35))])
        #expect(actions.pids(sent: .terminate) == pids)
        #expect(actions.pids(sent: .kill).isEmpty)
        #expect(actions.exitCodes.isEmpty)
        #expect(driver.pool.phase == .stopping(exitCode: 0))
        #expect(driver.pool.nextDeadline == driver.now + .seconds(30))
        #expect(driver.pool.workers.values.allSatisfy { $0.state == "draining" })
    }

    @Test("SIGINT stops the pool like SIGTERM")
    func interruptDrains() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let actions = driver.send(.signalReceived(.interrupt))
        #expect(actions.pids(sent: .terminate).count == 2)
        #expect(actions.logs(atLeast: .notice).contains { $0.hasPrefix("SIGINT received: draining 2 workers") })
    }

    @Test("SIGQUIT drains like SIGTERM, and a second one kills at once")
    func quitDrains() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let first = driver.send(.signalReceived(.quit))
        #expect(first.pids(sent: .terminate).count == 2)
        #expect(first.logs(atLeast: .notice).contains { $0.hasPrefix("SIGQUIT received: draining 2 workers") })
        let second = driver.send(.signalReceived(.quit))
        #expect(second.pids(sent: .kill).count == 2)
    }

    @Test("workers that exit during the drain are not restarted, and the last exit ends the supervisor with status 0")
    func noRestartsDuringDrain() {
        var driver = PoolDriver(desired: 3)
        driver.start()
        driver.send(.signalReceived(.terminate))
        let crash = driver.exit(slot: 0, status: .exited(1))
        #expect(crash.spawnedSlots.isEmpty)
        #expect(crash.logs(atLeast: .info).contains { $0.contains("stopped: exit status 1") })
        driver.exit(slot: 1, status: .exited(0))
        #expect(driver.pool.nextDeadline == PoolDriver.epoch + .seconds(30))
        #expect(driver.pool.slots.allSatisfy { $0.restartAt == nil })

        let last = driver.exit(slot: 2, status: .exited(0))
        #expect(last.exitCodes == [0])
        #expect(driver.pool.phase == .exited)
        #expect(driver.lastStatus == "stopped")
        #expect(driver.advance(by: .seconds(120)).isEmpty)
        #expect(driver.history.spawnedSlots == [0, 1, 2])
    }

    @Test("workers still alive at the graceful timeout get SIGKILL, the others are left alone")
    func killAtGracefulDeadline() {
        var driver = PoolDriver(desired: 3)
        driver.start()
        let pids = (0..<3).map { driver.pid(ofSlot: $0)! }
        driver.send(.signalReceived(.terminate))
        driver.advance(by: .seconds(10))
        driver.exit(slot: 1, status: .exited(0))

        #expect(driver.advance(by: .milliseconds(19_999)).isEmpty)
        let kill = driver.advance(by: .milliseconds(1))
        #expect(kill.pids(sent: .kill) == [pids[0], pids[2]])
        #expect(kill.logs(atLeast: .warning).contains("worker 0 (pid \(pids[0])) outlived the graceful timeout (30s); killing it"))
        #expect(driver.pool.nextDeadline == nil)

        driver.send(.exited(pid: pids[0], status: .signaled(9)))
        let last = driver.send(.exited(pid: pids[2], status: .signaled(9)))
        #expect(last.exitCodes == [0])
    }

    @Test("a second SIGTERM during the drain kills every worker at once")
    func secondTerminateKills() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let pids = (0..<2).map { driver.pid(ofSlot: $0)! }
        driver.send(.signalReceived(.terminate))
        driver.advance(by: .seconds(1))
        let second = driver.send(.signalReceived(.terminate))
        #expect(second.pids(sent: .kill) == pids)
        #expect(second.logs(atLeast: .warning).contains("second SIGTERM: killing 2 workers now"))
        #expect(!second.systemdNotices.contains(.stopping))
        #expect(driver.pool.nextDeadline == nil)
        // A third signal does not kill twice.
        #expect(driver.send(.signalReceived(.interrupt)).pids(sent: .kill).isEmpty)
        #expect(driver.exitAll(status: .signaled(9)).exitCodes == [0])
    }

    @Test("stopping with no workers exits at once")
    func stopWithoutWorkers() {
        var driver = PoolDriver(desired: 2)
        let actions = driver.send(.signalReceived(.terminate))
        #expect(actions.exitCodes == [0])
        #expect(actions.signals.isEmpty)
        #expect(driver.pool.phase == .exited)
    }

    @Test("a restart waiting out its backoff is cancelled by the stop")
    func stopCancelsPendingRestart() {
        var driver = PoolDriver()
        driver.start()
        driver.exit(slot: 0)
        driver.exit(slot: 0)  // restart due in 1s
        #expect(driver.pid(ofSlot: 0) == nil)
        let stop = driver.send(.signalReceived(.terminate))
        #expect(stop.exitCodes == [0])
        #expect(driver.pool.nextDeadline == nil)
        #expect(driver.advance(by: .seconds(60)).spawnedSlots.isEmpty)
    }

    @Test("a partly stopped pool exits only after its last worker, while a restart was pending")
    func stopWithPendingRestartAndLiveWorkers() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        driver.exit(slot: 0)
        driver.exit(slot: 0)
        driver.send(.signalReceived(.terminate))
        #expect(driver.pool.nextDeadline == driver.now + .seconds(30))
        let last = driver.exit(slot: 1, status: .exited(0))
        #expect(last.exitCodes == [0])
        #expect(driver.history.spawnedSlots == [0, 1, 0])
    }

    @Test("SIGUSR2 asks for an in-place upgrade to the installed program, admitted like hyperglassctl upgrade; refused during a roll with a log line")
    func user2Upgrades() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let actions = driver.send(.signalReceived(.user2))
        #expect(actions.contains(.checkUpgrade(path: nil, for: .signal(.user2))), "\(actions)")
        #expect(actions.logs(atLeast: .notice).first?.hasPrefix("SIGUSR2: upgrading in place to the installed program") == true, "\(actions)")
        #expect(driver.send(.upgradeFailed(reason: "cannot upgrade: no", for: .signal(.user2))).logs(atLeast: .warning) == ["SIGUSR2: cannot upgrade: no"])
        driver.send(.reloadRequested(release: 2, policy: .with { $0.readiness = .notify }))
        let refused = driver.send(.signalReceived(.user2)).logs(atLeast: .warning)
        #expect(refused.count == 1 && refused[0].hasPrefix("SIGUSR2: cannot upgrade now: a reload is in progress"), "\(refused)")
    }

    @Test("SIGUSR1 and SIGALRM are logged once and change nothing")
    func habitualSignalsIgnored() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        for signal in [Signal.user1, .alarm] {
            let actions = driver.send(.signalReceived(signal))
            #expect(actions.logs(atLeast: .notice).count == 1 && actions.logs(atLeast: .notice)[0].hasPrefix("\(signal.name) ignored: "), "\(actions)")
            #expect(actions.signals.isEmpty && actions.spawnedSlots.isEmpty)
        }
        #expect(driver.pool.phase == .running)
    }

    @Test("SIGHUP is a reload request: the core admits it and asks the shell to read the configuration")
    func hangupReloads() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let actions = driver.send(.signalReceived(.hangup))
        #expect(actions.logs(atLeast: .notice) == ["SIGHUP: reloading the configuration"])
        #expect(actions.contains(.readConfiguration(for: .signal(.hangup))))
        #expect(actions.signals.isEmpty)
        #expect(driver.pool.phase == .running)
    }

    @Test("a worker killed by the ready timeout during the drain is not sent SIGTERM as well")
    func drainSkipsKilled() {
        var driver = PoolDriver(desired: 2, policy: .with { $0.readiness = .notify; $0.readyTimeout = .seconds(5) })
        driver.start()
        driver.ready(slot: 1)
        let stuck = driver.pid(ofSlot: 0)!
        driver.advance(by: .seconds(5))
        let stop = driver.send(.signalReceived(.terminate))
        #expect(stop.pids(sent: .terminate) == [driver.pid(ofSlot: 1)!])
        let exit = driver.send(.exited(pid: stuck, status: .signaled(9)))
        #expect(exit.spawnedSlots.isEmpty)
        #expect(exit.logs(atLeast: .warning).contains { $0.contains("exited while draining") })
    }
}
