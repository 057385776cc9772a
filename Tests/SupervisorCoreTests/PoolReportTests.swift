import Testing
@testable import SupervisorCore

/// Failures and restarts reach the counters, the journal fields and the event stream with their reason.
@Suite("Pool: reports and counters by reason", .timeLimit(.minutes(1)))
struct PoolReportTests {
    static func reports(_ actions: [Action], _ kind: PoolEvent.Kind) -> [PoolEvent] {
        actions.compactMap { if case let .report(event) = $0, event.kind == kind { event } else { nil } }
    }

    @Test("a crash is an exited event with REASON=crash, then a restart, each counted once by reason")
    func crashCounted() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let pid = driver.pid(ofSlot: 1)!
        let actions = driver.exit(slot: 1, status: .signaled(9))
        let exited = Self.reports(actions, .exited)
        #expect(exited.count == 1)
        #expect(exited.first?.fields.map { "\($0.name)=\($0.value)" } == ["EVENT=exited", "WORKER_ID=1", "WORKER_PID=\(pid)", "GENERATION=1", "REASON=crash"])
        #expect(Self.reports(actions, .restart).map(\.reason) == [.crash])
        #expect(driver.pool.counters.failures == [.crash: 1])
        #expect(driver.pool.counters.restarts == [.crash: 1])
        driver.advance(by: .seconds(2))
        #expect(driver.pool.counters.spawns == 3)
    }

    @Test("an OOM kill is an exited event with REASON=oom, counted as oom, and the slot restarts with backoff")
    func oomCounted() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let actions = driver.exit(slot: 1, status: .oomKilled)
        #expect(Self.reports(actions, .exited).map(\.reason) == [.oom])
        #expect(Self.reports(actions, .exited).first?.fields.contains { $0.name == "REASON" && $0.value == "oom" } == true)
        #expect(Self.reports(actions, .restart).map(\.reason) == [.oom])
        #expect(driver.pool.counters.failures == [.oom: 1])
        #expect(actions.logs(atLeast: .warning).contains { $0.contains("killed by the kernel's OOM killer") })
        #expect(driver.pool.slots[1].lastExit == .oomKilled)
        // The second OOM in a row waits for the backoff instead of restarting at once.
        driver.advance(by: .seconds(3))
        let again = driver.exit(slot: 1, status: .oomKilled)
        #expect(again.spawnedSlots.isEmpty)
        #expect(driver.pool.counters.failures == [.oom: 2])
    }

    @Test("a worker asked to stop exits with no reason and counts as no failure")
    func drainedIsNoFailure() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let removed = driver.pid(ofSlot: 1)!
        driver.send(.desiredCountChanged(1))
        driver.send(.exited(pid: removed, status: .exited(0)))
        #expect(Self.reports(driver.history, .exited).map(\.reason) == [nil])
        #expect(driver.pool.counters.failures.isEmpty)
    }

    @Test("a missed watchdog counts one watchdog failure and restart; the hung worker's later exit adds nothing")
    func watchdogCounted() {
        var driver = PoolDriver(desired: 1, policy: PoolPolicy.with { $0.health.workerWatchdog = .seconds(2) })
        driver.start()
        let hung = driver.pid(ofSlot: 0)!
        driver.send(.notified(pid: hung, message: NotifyMessage(watchdog: true)))
        driver.advance(by: .seconds(3))
        driver.send(.exited(pid: hung, status: .signaled(6)))
        #expect(driver.pool.counters.failures == [.watchdog: 1])
        #expect(driver.pool.counters.restarts == [.watchdog: 1])
        #expect(Self.reports(driver.history, .watchdog).first?.reason == .watchdog)
    }

    @Test("failed probes make an unhealthy report with REASON=probe, counted as a failure and a restart")
    func probeCounted() {
        let policy = PoolPolicy.with { $0.health.probePath = "/health"; $0.health.probeFailures = 2; $0.health.probeGrace = .zero }
        var driver = PoolDriver(desired: 1, policy: policy)
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        for _ in 0..<2 { driver.send(.probed(pid: pid, result: ProbeResult(ok: false, latency: .seconds(2), detail: "timed out"))) }
        #expect(Self.reports(driver.history, .unhealthy).map(\.reason) == [.probe])
        #expect(driver.pool.counters.failures == [.probe: 1])
        #expect(driver.pool.counters.restarts == [.probe: 1])
        #expect(driver.pool.counters.probeFailures == 2)
    }

    @Test("a worker over max_memory is reported unhealthy with REASON=memory when its recycling begins")
    func memoryCounted() {
        var driver = PoolDriver(desired: 1, policy: PoolPolicy.with { $0.health.maxMemory = 100 << 20 })
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.advance(by: .seconds(10))
        driver.send(.memorySampled([pid: 150 << 20]))
        driver.advance(by: .seconds(10))
        #expect(driver.pool.counters.failures == [.memory: 1])
        #expect(driver.pool.counters.restarts == [.memory: 1])
    }

    @Test("a command that cannot start is a failed-start failure and restart")
    func failedStartCounted() {
        var driver = PoolDriver(desired: 1)
        driver.spawnOutcome = { _, _ in "No such file or directory" }
        driver.start()
        let failed = Self.reports(driver.history, .spawnFailed)
        #expect(!failed.isEmpty && failed.allSatisfy { $0.reason == .failedStart })
        // One count per failed start (the first restart may come at once, so there can be several).
        #expect(driver.pool.counters.failures == [.failedStart: UInt64(failed.count)])
        #expect(driver.pool.counters.restarts == [.failedStart: UInt64(failed.count)])
    }

    @Test("a worker killed for missing ready_timeout exits with REASON=ready-timeout")
    func readyTimeoutCounted() {
        var driver = PoolDriver(desired: 1, policy: PoolPolicy.with { $0.readiness = .notify; $0.readyTimeout = .seconds(5) })
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.advance(by: .seconds(5))
        driver.send(.exited(pid: pid, status: .signaled(9)))
        #expect(Self.reports(driver.history, .exited).map(\.reason) == [.readyTimeout])
        #expect(driver.pool.counters.failures == [.readyTimeout: 1])
    }

    @Test("the counters outlive a reload: the pool keeps them when its policy changes")
    func countersSurviveReload() {
        var driver = PoolDriver(desired: 1)
        driver.start()
        driver.exit(slot: 0)
        driver.advance(by: .seconds(2))
        driver.send(.reloadRequested(release: 2, policy: .testDefault))
        #expect(driver.pool.lastRoll?.succeeded == true)
        #expect(driver.pool.counters.failures == [.crash: 1])
        #expect(driver.pool.counters.rolls == [.init(kind: .reload, succeeded: true): 1])
    }
}
