import Testing
@testable import SupervisorCore

/// What a reload applies (the pure plan) and how the pool carries it out with its releases.
@Suite("Reload plan and releases", .timeLimit(.minutes(1)))
struct ReloadPlanTests {
    private static func settings(_ change: (inout Settings) -> Void = { _ in }) -> Settings {
        var settings = Settings()
        settings.command = ["/bin/worker"]
        change(&settings)
        return settings
    }

    @Test("a count set at run time survives a reload that leaves workers alone; a changed workers setting wins")
    func count() throws {
        let running = Self.settings { $0.workers = .fixed(4) }
        let same = try ReloadPlan(loaded: running, inEffect: running, runningCount: 7, onlineCPUs: 2)
        #expect(same.count == nil)
        let changed = try ReloadPlan(loaded: Self.settings { $0.workers = .fixed(2) }, inEffect: running, runningCount: 7, onlineCPUs: 2)
        #expect(changed.count == 2)
        // auto with 2 CPUs is 4 workers: the same count, written differently, is no change.
        let auto = try ReloadPlan(loaded: Self.settings { $0.workers = .auto }, inEffect: running, runningCount: 7, onlineCPUs: 2)
        #expect(auto.count == nil)
    }

    @Test("a reload that would leave more workers than the new max_workers is refused")
    func maxWorkers() {
        let running = Self.settings { $0.workers = .fixed(4) }
        #expect(throws: ConfigError.self) {
            try ReloadPlan(loaded: Self.settings { $0.workers = .fixed(4); $0.maxWorkers = 5 }, inEffect: running, runningCount: 6, onlineCPUs: 2)
        }
        #expect(throws: Never.self) {
            try ReloadPlan(loaded: Self.settings { $0.workers = .fixed(5); $0.maxWorkers = 5 }, inEffect: running, runningCount: 6, onlineCPUs: 2)
        }
    }

    @Test("changes only a restart applies are named in the note; reloadable ones are not")
    func restartNote() throws {
        let running = Self.settings()
        let plain = try ReloadPlan(loaded: Self.settings { $0.readyTimeout = .seconds(5) }, inEffect: running, runningCount: 1, onlineCPUs: 1)
        #expect(plain.needRestart.isEmpty && plain.note == nil)
        let sockets = try ReloadPlan(loaded: Self.settings { $0.bind = [.tcp(host: nil, port: 9000)]; $0.controlGroup = "ops" },
                                     inEffect: running, runningCount: 1, onlineCPUs: 1)
        #expect(sockets.needRestart == ["bind", "control_group"])
        #expect(sockets.note == "bind, control_group changed, but only a restart applies that (systemctl restart hyperglass); kept the running value")
    }

    @Test("shrink before the roll, grow after it, no scaling when the count stays")
    func order() throws {
        let running = Self.settings { $0.workers = .fixed(4) }
        let fewer = try ReloadPlan(loaded: Self.settings { $0.workers = .fixed(2) }, inEffect: running, runningCount: 4, onlineCPUs: 1)
        #expect(fewer.steps(from: 4) == [.scale(2), .roll])
        let more = try ReloadPlan(loaded: Self.settings { $0.workers = .fixed(6) }, inEffect: running, runningCount: 4, onlineCPUs: 1)
        #expect(more.steps(from: 4) == [.roll, .scale(6)])
        #expect(more.steps(from: 6) == [.roll])
        let same = try ReloadPlan(loaded: running, inEffect: running, runningCount: 3, onlineCPUs: 1)
        #expect(same.steps(from: 3) == [.roll])
    }

    @Test("a reload to fewer workers removes slots first, so the roll replaces only those that stay")
    func poolShrinksFirst() {
        var driver = PoolRollTests.running(4)
        let actions = driver.send(.reloadRequested(release: 2, policy: PoolRollTests.notify, count: 2))
        #expect(driver.pool.desired == 2)
        #expect(driver.pool.roll?.total == 2)
        #expect(actions.pids(sent: .terminate) == [103, 102])
    }

    @Test("a reload to more workers starts the new slots on the new release, outside the roll")
    func poolGrowsAfter() {
        var driver = PoolRollTests.running(2)
        let actions = driver.send(.reloadRequested(release: 2, policy: PoolRollTests.notify, count: 3))
        #expect(driver.pool.roll?.total == 2)
        #expect(actions.contains(.spawn(slot: 2, generation: 1, release: 2)))
        #expect(driver.pool.slots[2].release == 2)
    }

    @Test("the releases: the new one is in effect once the roll succeeded, the old one again after a rollback, unused ones forgotten")
    func releases() {
        let first = PoolPolicy.with { $0.readiness = .notify; $0.readyTimeout = .seconds(11) }
        var driver = PoolDriver(desired: 1, policy: first)
        driver.start()
        driver.readyAll()
        #expect(driver.pool.releases.next == 2)
        var second = first
        second.readyTimeout = .seconds(22)
        driver.send(.reloadRequested(release: 2, policy: second, note: "debug changed"))
        #expect(driver.pool.releases[1] != nil && driver.pool.releases[2] != nil)
        // The successor fails: the reload rolls back, and the note still reaches its outcome.
        driver.send(.exited(pid: driver.pool.slots[0].successor!.pid!, status: .exited(1)))
        #expect(driver.pool.lastRoll?.succeeded == false)
        #expect(driver.pool.lastRoll?.note == "debug changed")
        #expect(driver.pool.releases.inEffect.readyTimeout == .seconds(11))
        #expect(driver.pool.policy.readyTimeout == .seconds(11))
        // The next reload gets a fresh number and forgets release 2, which nothing runs.
        #expect(driver.pool.releases.next == 3)
        var third = first
        third.readyTimeout = .seconds(33)
        driver.send(.reloadRequested(release: 3, policy: third))
        #expect(driver.pool.releases[2] == nil)
        driver.send(.notified(pid: driver.pool.slots[0].successor!.pid!, message: NotifyMessage(ready: true)))
        #expect(driver.pool.lastRoll?.succeeded == true)
        #expect(driver.pool.releases.inEffect.readyTimeout == .seconds(33))
        #expect(driver.pool.lastRoll?.note == nil)
    }
}
