import Testing
@testable import SupervisorCore

@Suite("Resource limits: counts that cannot fit, spawns that hit a limit", .timeLimit(.minutes(1)))
struct ResourceLimitTests {
    static let emfile = "start worker: Too many open files"

    @Test("under ulimit -n 128, workers 150 and an autoscaling ceiling of 100 are capped to what fits, and the cap says why")
    func countsBeyondTheFileLimitAreCapped() throws {
        let limits = ResourceLimits(openFiles: 128, openFilesInUse: 10)
        let capacity = try #require(limits.workerCapacity)
        #expect(capacity.count == (128 - 10 - ResourceLimits.filesReserve) / ResourceLimits.filesPerWorker)
        var settings = Settings()
        settings.workers = .fixed(150)
        settings.maxWorkers = 200
        let (fixed, note) = limits.capped(settings)
        #expect(fixed.workers == .fixed(capacity.count))
        #expect(fixed.maxWorkers == capacity.count)
        #expect(note?.contains("RLIMIT_NOFILE 128") == true)
        #expect(fixed.maxWorkersInWords.contains("LimitNOFILE="))
        settings.workers = .range(2...100)
        #expect(limits.capped(settings).settings.workers == .range(2...capacity.count))
    }

    @Test("a generous limit caps nothing, and a tiny one still leaves one worker")
    func generousAndTinyLimits() {
        var settings = Settings()
        settings.workers = .fixed(150)
        let generous = ResourceLimits(openFiles: 1_048_576, openFilesInUse: 12)
        #expect(generous.workerCapacity == nil)
        #expect(generous.capped(settings).settings == settings)
        #expect(ResourceLimits(openFiles: nil, openFilesInUse: 12).capped(settings).note == nil)
        #expect(ResourceLimits(openFiles: 32, openFilesInUse: 12).workerCapacity?.count == 1)
        #expect(ResourceLimits(openFiles: nil, openFilesInUse: 12, processesLeft: 40).workerCapacity?.count == 40 - ResourceLimits.processesReserve)
    }

    @Test("spawns failing with EMFILE are no crash loop: with crash_loop = exit the pool keeps running and retries at the maximum backoff")
    func limitedSpawnsAreNoCrashLoop() {
        var driver = PoolDriver(desired: 2, policy: .with { $0.crashLoop = .exit })
        driver.spawnLimit = { slot, _ in slot >= 2 ? Self.emfile : nil }
        driver.start()
        driver.send(.desiredCountChanged(4))
        for _ in 0..<10 { driver.advance(by: .seconds(31)) }
        #expect(driver.history.exitCodes.isEmpty)
        #expect(driver.pool.phase == .running)
        #expect(driver.pool.crashLoopingSlots.isEmpty)
        #expect(driver.pool.slots[2].failures == 0)
        #expect(driver.pool.slots[2].restartAt != nil && driver.pool.slots[2].waitingForResources)
        // Retried at the maximum backoff (30 s), not in a tight loop: about one try per 31 s step.
        let tries = driver.history.filter { if case .spawn(2, _, _) = $0 { true } else { false } }.count
        #expect(tries >= 10 && tries <= 12)
        #expect(driver.pid(ofSlot: 0) != nil && driver.pid(ofSlot: 1) != nil)
    }

    @Test("while a slot waits for resources the pool does not grow, and it grows again once that slot runs")
    func noGrowthWhileLimited() {
        var driver = PoolDriver(desired: 2)
        var limited = true
        driver.spawnLimit = { slot, _ in slot == 2 && limited ? Self.emfile : nil }
        driver.start()
        driver.send(.desiredCountChanged(3))
        let refused = driver.send(.desiredCountChanged(8))
        #expect(driver.pool.desired == 3)
        guard case .refused(let reason)? = refused.replies.first else {
            Issue.record("growth was not refused: \(refused)")
            return
        }
        #expect(reason.contains("want of resources"))
        limited = false
        driver.advance(by: .seconds(31))
        #expect(driver.pid(ofSlot: 2) != nil)
        driver.send(.desiredCountChanged(8))
        #expect(driver.pool.desired == 8)
    }

    @Test("a successor that hits a resource limit stops the roll; the old worker keeps serving")
    func limitedSuccessorStopsTheRoll() {
        var driver = PoolDriver(desired: 1)
        driver.start()
        driver.readyAll()
        let old = driver.pid(ofSlot: 0)
        driver.spawnLimit = { _, _ in Self.emfile }
        driver.send(.restartRequested(slots: [0]))
        #expect(driver.pool.roll == nil)
        #expect(driver.pid(ofSlot: 0) == old)
        #expect(driver.pool.lastRoll?.succeeded == false)
    }
}
