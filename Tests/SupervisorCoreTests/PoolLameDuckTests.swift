import ControlProtocol
import Testing
@testable import SupervisorCore

/// `lame_duck`: a stop signal first takes the node out of load balancers (not-ready) while the workers go
/// on serving, and only then drains.
@Suite("Pool: lame-duck delay", .timeLimit(.minutes(1)))
struct PoolLameDuckTests {
    static let lameDuck = PoolPolicy.with { $0.lameDuck = .seconds(10) }

    static func readyz(_ driver: PoolDriver) -> Bool {
        HealthEndpoints.readiness(driver.pool, share: ReadyShare.defaultShare, at: driver.now).ok
    }

    @Test("during the lame-duck delay a reload, a restart and a scaling are refused: the node is on its way out")
    func noRollOrScalingWhileLameDuck() {
        var driver = PoolDriver(desired: 2, policy: Self.lameDuck)
        driver.start()
        driver.send(.signalReceived(.terminate))
        let reload = driver.send(.reloadRequested(release: 2, policy: Self.lameDuck))
        #expect(reload.spawnedSlots.isEmpty)
        #expect(reload.replies == [.refused("cannot reload: the supervisor is stopping (lame duck: draining in 10 s)")])
        driver.advance(by: .milliseconds(3_500))
        let restart = driver.send(.restartRequested(slots: [0]))
        #expect(restart.replies == [.refused("cannot restart: the supervisor is stopping (lame duck: draining in 7 s)")])
        let scale = driver.send(.desiredCountChanged(4))
        #expect(scale.spawnedSlots.isEmpty)
        #expect(scale.replies.first.map { if case .refused = $0 { true } else { false } } == true)
        #expect(driver.pool.desired == 2)
    }

    @Test("SIGTERM with lame_duck reports not-ready at once but signals no worker until the delay is over, then drains")
    func notReadyThenDrain() {
        var driver = PoolDriver(desired: 2, policy: Self.lameDuck)
        driver.start()
        #expect(Self.readyz(driver))
        let pids = (0..<2).map { driver.pid(ofSlot: $0)! }

        let first = driver.send(.signalReceived(.terminate))
        #expect(first.signals.isEmpty, "the workers keep serving during the lame-duck delay")
        #expect(!Self.readyz(driver), "/readyz says 503 at once")
        #expect(driver.pool.phase == .lameDuck(until: PoolDriver.epoch + .seconds(10)))
        #expect(driver.lastStatus == "lame duck: draining in 10 s; 2/2 workers ready")
        // systemd's stop timeout must cover the lame duck and the graceful timeout (30 s) after it.
        #expect(first.systemdNotices.contains(.extendTimeout(.seconds(45))))
        #expect(!first.systemdNotices.contains(.stopping))
        #expect(driver.pool.nextDeadline == PoolDriver.epoch + .seconds(10))

        #expect(driver.advance(by: .milliseconds(9_999)).signals.isEmpty)
        let drain = driver.advance(by: .milliseconds(1))
        #expect(drain.pids(sent: .terminate) == pids)
        #expect(drain.systemdDatagrams.first == [.stopping, .extendTimeout(.seconds(35))])
        #expect(drain.logs(atLeast: .notice).contains { $0.hasPrefix("lame-duck delay (10s) over: draining 2 workers") })
        #expect(driver.pool.phase == .stopping(exitCode: 0))
        #expect(driver.exitAll().exitCodes == [0])
    }

    @Test("a second signal during the lame-duck delay drains at once, and a third kills")
    func secondSignalDrainsNow() {
        var driver = PoolDriver(desired: 2, policy: Self.lameDuck)
        driver.start()
        driver.send(.signalReceived(.terminate))
        driver.advance(by: .seconds(3))
        let second = driver.send(.signalReceived(.interrupt))
        #expect(second.pids(sent: .terminate).count == 2)
        #expect(second.logs(atLeast: .notice).contains { $0.hasPrefix("second SIGINT during the lame-duck delay: draining 2 workers") })
        #expect(driver.pool.nextDeadline == driver.now + .seconds(30), "the graceful timeout, not the rest of the lame duck")
        let third = driver.send(.signalReceived(.quit))
        #expect(third.pids(sent: .kill).count == 2)
    }

    @Test("a worker that crashes during the lame-duck delay is restarted: the node still serves")
    func restartsDuringLameDuck() {
        var driver = PoolDriver(desired: 2, policy: Self.lameDuck)
        driver.start()
        driver.send(.signalReceived(.quit))
        let crash = driver.exit(slot: 1, status: .exited(1))
        #expect(crash.spawnedSlots == [1])
        #expect(!Self.readyz(driver), "still not-ready: the stop was asked for")
        #expect(driver.advance(by: .seconds(10)).pids(sent: .terminate).count == 2)
    }

    @Test("lame_duck = 0 (the default) drains at once, as before")
    func offByDefault() {
        #expect(Settings().lameDuck == .zero)
        var driver = PoolDriver(desired: 1)
        driver.start()
        #expect(driver.send(.signalReceived(.terminate)).pids(sent: .terminate).count == 1)
        #expect(driver.pool.phase == .stopping(exitCode: 0))
    }

    @Test("lame_duck is read from the file like any duration and printed back")
    func configKey() throws {
        var settings = Settings()
        try ConfigKey.named("lame_duck")!.apply(&settings, "15s")
        #expect(settings.lameDuck == .seconds(15))
        #expect(ConfigKey.named("lame_duck")!.values(in: settings) == ["15s"])
    }
}
