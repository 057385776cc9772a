import Testing
@testable import SupervisorCore

/// Parallel rolls (issue 23): `max_surge` new workers start at once, each one's `min_ready` overlaps the
/// next start, and any failure before a new worker settled still rolls back every new worker of the roll.
@Suite("Pool: parallel rolls", .timeLimit(.minutes(1)))
struct PoolParallelRollTests {
    /// Notify readiness and the operator's 3 s settle period.
    static let settling = PoolPolicy.with { $0.readiness = .notify; $0.minReady = .seconds(3) }

    static func running(_ desired: Int, policy: PoolPolicy = settling) -> PoolDriver {
        var driver = PoolDriver(desired: desired, policy: policy)
        driver.start()
        driver.readyAll()
        return driver
    }

    /// Every new worker starting now sends READY=1.
    static func startingReady(_ driver: inout PoolDriver) -> [Action] {
        let starting = driver.pool.slots.compactMap { slot in slot.successor?.pid.flatMap { pid in driver.pool.workers[pid]?.isReady == false ? pid : nil } }
        return starting.flatMap { driver.send(.notified(pid: $0, message: NotifyMessage(ready: true))) }
    }

    @Test("max_surge is a count or a share of the pool rounded up, at least 1 (Kubernetes' 25 % by default)")
    func surgeArithmetic() throws {
        #expect(Settings().maxSurge == .percent(25))
        #expect([1, 3, 4, 5, 16, 32, 1000].map { MaxSurge.standard.resolved(for: $0) } == [1, 1, 1, 2, 4, 8, 250])
        #expect(MaxSurge.count(3).resolved(for: 16) == 3)
        #expect(try ValueParser.maxSurge("25%") == .percent(25))
        #expect(try ValueParser.maxSurge("2") == .count(2))
        #expect(MaxSurge.percent(25).configText == "25%" && MaxSurge.count(2).configText == "2")
        #expect(throws: ConfigValueError("'0%' is not a share from 1% to 100%")) { try ValueParser.maxSurge("0%") }
        #expect(throws: ConfigValueError.self) { try ValueParser.maxSurge("150%") }
        #expect(throws: ConfigValueError.self) { try ValueParser.maxSurge("0") }
    }

    @Test("a slot removed by a scale-down while its new worker settles is not reported replaced: the outcome says what happened")
    func scaleDownDuringRollIsReportedAsRemoved() {
        var driver = Self.running(3)
        driver.send(.restartRequested(slots: [2]))
        driver.advance(by: .milliseconds(200))
        Self.startingReady(&driver)
        #expect(driver.pool.rollProgress?.settling == 1)
        driver.send(.desiredCountChanged(1))
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.succeeded == true)
        #expect(driver.pool.lastRoll?.summary == "restart complete: 0 workers replaced, 1 removed by a scale-down before its turn ended, in 200ms",
                "\(driver.pool.lastRoll?.summary ?? "no outcome")")
        // With nothing removed the summary is as before.
        var whole = Self.running(2)
        whole.send(.restartRequested(slots: [0, 1]))
        for _ in 0..<4 {
            whole.advance(by: .milliseconds(200))
            Self.startingReady(&whole)
        }
        whole.advance(by: .seconds(3))
        #expect(whole.pool.lastRoll?.summary.hasPrefix("restart complete: 2 workers replaced in ") == true, "\(whole.pool.lastRoll?.summary ?? "no outcome")")
    }

    @Test("a roll of 16 starts 4 at once and the next 4 as soon as those are ready: it ends 4 starts + min_ready after it began")
    func sixteenOverlap() {
        var driver = Self.running(16)
        let old = Set((0..<16).compactMap { driver.pid(ofSlot: $0) })
        var lowestReady = Int.max
        driver.observer = { _, _, pool, _ in lowestReady = min(lowestReady, pool.readyCount) }
        let began = driver.now
        let begin = driver.send(.reloadRequested(release: 2, policy: Self.settling))
        #expect(begin.spawnedSlots == [0, 1, 2, 3])
        #expect(driver.lastStatus == "rolling: 0/16 new, 4 starting, 0 settling, 0 failed; 16/16 workers ready")
        var batches: [[Int]] = []
        // Each new worker takes 200 ms to be ready.
        for _ in 0..<4 {
            driver.advance(by: .milliseconds(200))
            batches.append(Self.startingReady(&driver).spawnedSlots)
        }
        #expect(batches == [[4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], []])
        #expect(driver.lastStatus == "rolling: 0/16 new, 0 starting, 16 settling, 0 failed; 16/16 workers ready")
        #expect(driver.history.pids(sent: .terminate).isEmpty, "nothing drains before a new worker settled")
        driver.advance(by: .seconds(3))
        #expect(driver.pool.lastRoll?.succeeded == true)
        #expect(driver.now - began == .milliseconds(3800), "4 × 200 ms + min_ready, against 16 × 3.2 s one at a time")
        #expect(Set(driver.history.pids(sent: .terminate)) == old)
        #expect(lowestReady == 16, "capacity never below desired")
    }

    @Test("a new worker that exits within min_ready while others settle stops every new worker of the roll (settling ones drain, starting ones are killed) and leaves the old ones alone")
    func failureWhileOthersSettle() {
        var driver = Self.running(8)
        let old = (0..<8).map { driver.pid(ofSlot: $0)! }
        driver.send(.reloadRequested(release: 2, policy: Self.settling))
        driver.advance(by: .milliseconds(200))
        Self.startingReady(&driver)
        driver.advance(by: .milliseconds(200))
        Self.startingReady(&driver)
        driver.advance(by: .milliseconds(200))
        Self.startingReady(&driver)
        let fresh = driver.pool.slots.compactMap { $0.successor?.pid }
        #expect(fresh.count == 8)
        // The release dies 2 s after it started, inside min_ready.
        driver.advance(by: .milliseconds(1400))
        let failed = driver.send(.exited(pid: fresh[0], status: .exited(1)))
        let settling = fresh.filter { driver.pool.workers[$0]?.readyAt != nil && $0 != fresh[0] }
        #expect(settling.count == 5 && Set(fresh[1...5]) == Set(settling), "slots 1-5 were settling, 6 and 7 starting")
        #expect(Set(failed.pids(sent: .terminate)) == Set(settling), "settling ones serve: they drain")
        #expect(Set(failed.pids(sent: .kill)).subtracting([fresh[0]]) == Set(fresh[6...7]), "starting ones serve nothing: killed")
        #expect(Set(failed.signals.map(\.pid)).isDisjoint(with: old), "no old worker is signalled")
        #expect(failed.spawnedSlots.isEmpty, "nothing had taken over: there is nothing to roll back")
        #expect(driver.pool.lastRoll?.succeeded == false)
        #expect(driver.pool.lastRoll?.summary.hasPrefix("reload failed at worker 0") == true)
        #expect((0..<8).map { driver.pid(ofSlot: $0)! } == old)
        #expect(driver.pool.release == 1)
        #expect(failed.systemdNotices.contains(.ready))
    }

    @Test("a failure after some new workers took over rolls every one of them back, in parallel too")
    func rollbackEveryTakenOver() {
        var policy = Self.settling
        policy.minReady = .seconds(1)
        var driver = Self.running(8, policy: policy)
        driver.send(.reloadRequested(release: 2, policy: policy))
        // Two batches: the first settles and takes over, the second settles until one of it dies.
        driver.advance(by: .milliseconds(100))
        Self.startingReady(&driver)
        driver.advance(by: .seconds(1))
        let moved = driver.pool.slots.filter { $0.release == 2 }.map(\.id)
        #expect(moved == [0, 1])
        let dying = driver.pool.slots[2].successor!.pid!
        let other = driver.pool.slots[3].successor!.pid!
        let failed = driver.send(.exited(pid: dying, status: .exited(1)))
        #expect(driver.pool.roll?.kind == .rollback)
        #expect(failed.spawnedSlots == [0, 1], "the rollback starts max_surge (25 % of 8: 2) at once")
        #expect(failed.pids(sent: .kill).filter { $0 != dying } == [other], "the other new worker still starting goes at once")
        #expect(driver.lastStatus?.hasPrefix("rolling back: 0/2 restored") == true)
        #expect(driver.lastStatus?.contains("1 failed") == true)
    }

    @Test("with exec readiness a settling successor still counts against max_surge: exec'd is not serving")
    func execSettlingCounts() {
        let policy = PoolPolicy.with { $0.readiness = .exec; $0.minReady = .seconds(3) }
        var driver = PoolDriver(desired: 8, policy: policy)
        driver.start()
        driver.advance(by: .seconds(1))
        let begin = driver.send(.reloadRequested(release: 2, policy: policy))
        #expect(begin.spawnedSlots == [0, 1], "25 % of 8, though both are 'ready' as soon as they exec")
        #expect(driver.advance(by: .seconds(3)).spawnedSlots == [2, 3])
    }

    @Test("each batch of starts extends systemd's timeout by ready_timeout + min_ready + 5 s, the bound of the roll's end after its last start")
    func extendTimeoutPerBatch() {
        var policy = Self.settling
        policy.readyTimeout = .seconds(20)
        var driver = Self.running(8, policy: policy)
        let extend = SystemdNotice.extendTimeout(.seconds(28))
        let begin = driver.send(.reloadRequested(release: 2, policy: policy))
        #expect(begin.systemdNotices.contains(extend))
        driver.advance(by: .milliseconds(100))
        let next = Self.startingReady(&driver)
        #expect(next.systemdNotices.count { $0 == extend } == 2, "one per new worker ready, each starting the next")
    }
}
