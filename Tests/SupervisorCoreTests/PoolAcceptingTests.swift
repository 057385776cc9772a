import Testing
@testable import SupervisorCore

/// `readiness = accepting` (ready once /proc shows the worker accepting), the `min_ready` settle period,
/// exits that count as failed starts (status 0 included), and health grace that ends at readiness.
@Suite("Pool: accepting readiness and min_ready", .timeLimit(.minutes(1)))
struct PoolAcceptingTests {
    static let accepting = PoolPolicy.with { $0.readiness = .accepting; $0.minReady = .seconds(2) }
    static let evidence = "accepting on fd 3 (127.0.0.1:8001): in an epoll set of the worker"

    /// The pids of the `sampleAccepting` actions, in order.
    static func sampled(_ actions: [Action]) -> [[Int32]] {
        actions.compactMap { if case let .sampleAccepting(pids) = $0 { pids } else { nil } }
    }

    /// A running pool whose workers were all seen accepting.
    static func running(_ desired: Int, policy: PoolPolicy = accepting) -> PoolDriver {
        var driver = PoolDriver(desired: desired, policy: policy)
        driver.start()
        driver.advance(by: .milliseconds(50))
        driver.send(.acceptingSampled(Dictionary(uniqueKeysWithValues: driver.pool.workers.keys.map { ($0, .accepting(evidence)) })))
        return driver
    }

    /// The successor of `slot` is seen accepting; returns the actions.
    @discardableResult
    static func successorAccepts(_ driver: inout PoolDriver, slot: Int) -> [Action] {
        let pid = driver.pool.slots[slot].successor!.pid!
        return driver.send(.acceptingSampled([pid: .accepting(evidence)]))
    }

    @Test("a worker is not ready at exec; it is sampled after 50 ms and ready once it accepts, with the evidence logged")
    func readyWhenAccepting() {
        var driver = PoolDriver(policy: Self.accepting)
        let start = driver.start()
        let pid = driver.pid(ofSlot: 0)!
        #expect(driver.pool.readyCount == 0)
        #expect(start.readyNotifications == 0)
        #expect(driver.pool.nextDeadline == PoolDriver.epoch + .milliseconds(50))
        #expect(Self.sampled(driver.advance(by: .milliseconds(50))) == [[pid]])

        driver.advance(by: .milliseconds(30))
        let ready = driver.send(.acceptingSampled([pid: .accepting(Self.evidence)]))
        #expect(driver.pool.readyCount == 1)
        #expect(ready.readyNotifications == 1)
        #expect(ready.logs().contains("worker 0 ready (pid \(pid), 80ms after start): \(Self.evidence)"))
        #expect(driver.pool.workers[pid]?.readiness.evidence == Self.evidence)
    }

    @Test("sampling backs off: every 50 ms at first, then a tenth of the worker's age, at most every 500 ms")
    func samplingBacksOff() {
        var driver = PoolDriver(policy: Self.accepting)
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        var instants: [Duration] = []
        for _ in 0..<40 {
            guard let actions = driver.advanceToNextDeadline(), Self.sampled(actions) == [[pid]] else { break }
            instants.append(driver.now - PoolDriver.epoch)
            driver.send(.acceptingSampled([pid: .notYet]))
        }
        let gaps = zip(instants.dropFirst(), instants).map { $0 - $1 }
        #expect(instants.first == .milliseconds(50))
        #expect(gaps.prefix(5).allSatisfy { $0 == .milliseconds(50) })
        #expect(gaps.allSatisfy { $0 >= .milliseconds(50) && $0 <= .milliseconds(500) })
        #expect(gaps.last == .milliseconds(500))
        // Every gap is at least a tenth of the age at which it began (rounded to the 50 ms floor).
        for (gap, at) in zip(gaps, instants) { #expect(gap + .nanoseconds(1) >= min(.milliseconds(500), max(.milliseconds(50), at / 10))) }
    }

    @Test("once every worker is ready nothing is sampled and the pool asks for no wake-up at all")
    func noIdleSampling() {
        let driver = Self.running(3)
        #expect(driver.pool.readyCount == 3)
        #expect(driver.pool.nextDeadline == nil)
    }

    @Test("many workers starting together are each sampled once per round, no more often than 10 ms per starting worker")
    func samplingIsBounded() {
        var driver = PoolDriver(desired: 20, policy: Self.accepting)
        driver.start()
        let first = driver.advance(by: .milliseconds(50))
        #expect(Self.sampled(first).flatMap { $0 }.sorted() == driver.pool.workers.keys.sorted())
        driver.send(.acceptingSampled(Dictionary(uniqueKeysWithValues: driver.pool.workers.keys.map { ($0, .notYet) })))
        #expect(driver.pool.nextDeadline == driver.now + .milliseconds(200))
    }

    @Test("a worker /proc cannot tell about is noted once and still sampled; its ready timeout says what was seen")
    func unknownSamples() {
        var driver = PoolDriver(policy: .with { $0.readiness = .accepting; $0.readyTimeout = .seconds(1) })
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.advance(by: .milliseconds(50))
        let first = driver.send(.acceptingSampled([pid: .unknown("/proc/\(pid) is not readable: Permission denied")]))
        #expect(first.logs().count { $0.contains("cannot tell from /proc") } == 1)
        driver.advance(by: .milliseconds(50))
        let second = driver.send(.acceptingSampled([pid: .unknown("/proc/\(pid) is not readable: Permission denied")]))
        #expect(second.logs().allSatisfy { !$0.contains("cannot tell") })
        let timeout = driver.advance(by: .seconds(1))
        #expect(timeout.pids(sent: .kill) == [pid])
        #expect(timeout.logs(atLeast: .warning).contains {
            $0.hasPrefix("worker 0 (pid \(pid)) was not ready within 1s (ready_timeout): it never accepted on its listening sockets (/proc:")
        })
    }

    @Test("a roll's successor that accepts settles for min_ready before its predecessor drains; the next one starts meanwhile")
    func successorSettles() {
        var driver = Self.running(2)
        let old = driver.pid(ofSlot: 0)!
        driver.send(.reloadRequested(release: 2, policy: Self.accepting))
        driver.advance(by: .milliseconds(500))
        let ready = Self.successorAccepts(&driver, slot: 0)
        #expect(ready.pids(sent: .terminate).isEmpty, "the predecessor keeps serving while the successor settles")
        #expect(ready.logs().contains { $0.contains("settling for 2s (min_ready)") })
        #expect(ready.spawnedSlots == [1], "a settling successor no longer counts against max_surge")
        let successor = driver.pool.slots[0].successor!.pid!
        #expect(driver.pool.settlingUntil(successor) == driver.now + .seconds(2))
        #expect(driver.advance(by: .milliseconds(1999)).pids(sent: .terminate).isEmpty)
        let settled = driver.advance(by: .milliseconds(1))
        #expect(settled.pids(sent: .terminate) == [old])
        #expect(settled.spawnedSlots.isEmpty)
    }

    @Test("a successor that exits 0 within min_ready fails the reload: the predecessor was never drained and the message names the cause")
    func exitZeroWithinSettle() {
        var driver = Self.running(2)
        let old = (0..<2).map { driver.pid(ofSlot: $0)! }
        driver.send(.reloadRequested(release: 2, policy: Self.accepting))
        Self.successorAccepts(&driver, slot: 0)
        driver.advance(by: .milliseconds(1500))
        let successor = driver.pool.slots[0].successor!.pid!
        let failed = driver.send(.exited(pid: successor, status: .exited(0)))
        #expect(driver.history.pids(sent: .terminate).isEmpty)
        #expect(driver.pool.lastRoll?.succeeded == false)
        #expect(driver.pool.lastRoll?.summary == "reload failed at worker 0 (1/2): exit status 0 1.5s after it was ready, within min_ready (2s); kept the previous version")
        #expect(failed.logs(atLeast: .warning).allSatisfy { !$0.contains("stopped") })
        #expect((0..<2).map { driver.pid(ofSlot: $0)! } == old)
        #expect(driver.pool.release == 1)
    }

    @Test("a successor that exits 3 before it ever accepts fails the reload, naming what it did not do")
    func exitBeforeAccepting() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.accepting))
        let successor = driver.pool.slots[0].successor!.pid!
        driver.send(.exited(pid: successor, status: .exited(3)))
        #expect(driver.pool.lastRoll?.summary == "reload failed at worker 0 (1/2): exit status 3 before ready (it had not accepted on its listening sockets); kept the previous version")
        #expect(driver.history.pids(sent: .terminate).isEmpty)
    }

    @Test("an exit 0 nobody asked for is a failure: counted, backed off, never 'stopped'")
    func unaskedExitZeroIsAFailure() {
        var driver = Self.running(1)
        driver.advance(by: .seconds(5))
        let first = driver.exit(slot: 0, status: .exited(0))
        #expect(first.logs(atLeast: .warning).contains { $0.contains("exited unexpectedly: exit status 0 after 5") })
        #expect(driver.pool.slots[0].failures == 1)
        #expect(first.logs().allSatisfy { !$0.contains("stopped") })
        // Before ready, an exit 0 backs off like a crash.
        let second = driver.exit(slot: 0, status: .exited(0))
        #expect(second.logs(atLeast: .warning).contains { $0.contains("exit status 0 before ready (it had not accepted on its listening sockets)") })
        #expect(driver.pool.slots[0].failures == 2)
        #expect(driver.pool.slots[0].restartAt == driver.now + .seconds(1))
    }

    @Test("a worker that dies within min_ready of becoming ready counts as a failed start toward the crash loop")
    func exitWithinSettleCountsTowardCrashLoop() {
        var driver = PoolDriver(policy: .with { $0.readiness = .accepting; $0.minReady = .seconds(2); $0.crashLoopThreshold = 3 })
        driver.start()
        for round in 1...3 {
            driver.advance(by: .milliseconds(50))
            let pid = driver.pid(ofSlot: 0)!
            driver.send(.acceptingSampled([pid: .accepting(Self.evidence)]))
            driver.advance(by: .milliseconds(500))
            let exit = driver.exit(slot: 0, status: .exited(0))
            #expect(exit.logs(atLeast: .warning).contains { $0.contains("exit status 0 500ms after it was ready, within min_ready (2s)") }, "round \(round)")
            if let due = driver.pool.slots[0].restartAt { driver.advance(by: due - driver.now) }
        }
        #expect(driver.pool.slots[0].failures == 3)
        #expect(driver.history.logs(atLeast: .error).contains { $0.hasPrefix("crash loop: worker 0 failed 3 times in a row") })
    }

    @Test("a ready worker whose probes fail is replaced after health_failures probes, whatever health_grace says")
    func graceEndsAtReadiness() {
        var driver = Self.running(1, policy: .with {
            $0.readiness = .accepting
            $0.health.probePath = "/health"
            $0.health.probeInterval = .seconds(1)
            $0.health.probeFailures = 3
            $0.health.probeGrace = .seconds(60)
        })
        let pid = driver.pid(ofSlot: 0)!
        var replacedAt: Instant? = nil
        for _ in 0..<10 where replacedAt == nil {
            guard let actions = driver.advanceToNextDeadline() else { break }
            if actions.contains(.probe(pid: pid)) {
                let result = driver.send(.probed(pid: pid, result: ProbeResult(ok: false, latency: .milliseconds(2), detail: "HTTP 503")))
                if result.spawnedSlots == [0] { replacedAt = driver.now }
            }
        }
        // Ready at 50 ms; probes at 1 s, 2 s, 3 s: the third failure starts the replacement.
        #expect(replacedAt.map { $0 - PoolDriver.epoch } == .seconds(3))
    }

    @Test("with exec readiness, where ready means only 'exec ran', the grace still covers the start")
    func execKeepsGrace() {
        var driver = PoolDriver(policy: .with {
            $0.health.probePath = "/health"
            $0.health.probeInterval = .seconds(1)
            $0.health.probeGrace = .seconds(10)
        })
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.advance(by: .seconds(1))
        driver.send(.probed(pid: pid, result: ProbeResult(ok: false, latency: .milliseconds(2), detail: "cannot connect")))
        #expect(driver.pool.workers[pid]?.health.failedProbes == 0)
        #expect(driver.pool.workers[pid]?.readiness.evidence == "exec succeeded (readiness exec)")
    }

    @Test("a sample that arrives for a worker already stopping changes nothing")
    func lateSampleIgnored() {
        var driver = PoolDriver(policy: Self.accepting)
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.send(.signalReceived(.terminate))
        let late = driver.send(.acceptingSampled([pid: .accepting(Self.evidence)]))
        #expect(driver.pool.workers[pid]?.readyAt == nil)
        #expect(late.readyNotifications == 0)
    }

    @Test("the deadline table holds a starting worker's sample and a settling successor's takeover, and leaves neither due")
    func deadlineTable() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.accepting))
        let successor = driver.pool.slots[0].successor!.pid!
        #expect(driver.pool.armedDeadlines.contains { $0.deadline == .acceptingSample(pid: successor) })
        Self.successorAccepts(&driver, slot: 0)
        #expect(!driver.pool.armedDeadlines.contains { $0.deadline == .acceptingSample(pid: successor) })
        #expect(driver.pool.armedDeadlines.contains { $0.deadline == .settle(slot: 0) && $0.at == driver.now + .seconds(2) })
        driver.advance(by: .seconds(2))
        #expect(!driver.pool.armedDeadlines.contains { $0.deadline == .settle(slot: 0) })
        #expect(driver.pool.armedDeadlines.allSatisfy { $0.at > driver.now })
    }
}
