import Testing
@testable import SupervisorCore

@Suite("Pool deadlines: one table for when to wake and what is due", .timeLimit(.minutes(1)))
struct PoolDeadlineTests {
    static let busy = PoolPolicy.with {
        $0.readiness = .notify
        $0.systemdWatchdogInterval = .seconds(10)
        $0.health.workerWatchdog = .seconds(5)
        $0.health.probePath = "/health"
        $0.health.maxMemory = 100 << 20
        $0.backoff = BackoffPolicy(initial: .seconds(1), maximum: .seconds(8), jitter: 0)
    }

    private static func kind(_ deadline: Pool.Deadline) -> String {
        String(String(describing: deadline).prefix { $0 != "(" })
    }

    /// A pool with every kind of timer armed at once: a starting worker, a ready one that pinged its watchdog
    /// and is over max_memory, a slot in backoff, a removed worker draining.
    private static func everyTimerArmed() -> PoolDriver {
        var driver = PoolDriver(desired: 4, policy: busy)
        driver.start()
        driver.send(.notified(pid: driver.pid(ofSlot: 0)!, message: NotifyMessage(ready: true, watchdog: true)))
        driver.exit(slot: 1)
        driver.exit(slot: 1)
        driver.send(.memorySampled([driver.pid(ofSlot: 0)!: 200 << 20]))
        driver.send(.desiredCountChanged(3))
        return driver
    }

    @Test("the table lists each kind of timer a busy pool arms, and the next deadline is its earliest")
    func everyKindListed() {
        let driver = Self.everyTimerArmed()
        let armed = driver.pool.armedDeadlines
        #expect(Set(armed.map { Self.kind($0.deadline) })
                == ["kill", "readyTimeout", "restart", "workerWatchdog", "recycle", "probe", "memoryCheck", "systemdWatchdog"])
        #expect(driver.pool.nextDeadline == armed.map(\.at).min())
    }

    @Test("whatever is due when the deadline is reached is handled: no armed deadline is left in the past")
    func nothingDueIsLeft() {
        var driver = Self.everyTimerArmed()
        for _ in 0..<200 {
            guard driver.advanceToNextDeadline() != nil else { break }
            let late = driver.pool.armedDeadlines.filter { $0.at <= driver.now }
            #expect(late.isEmpty, "still due after deadlineReached: \(late.map(\.deadline))")
            if !late.isEmpty { return }
            // Answer probes and memory samples as the shell would, so their timers keep running.
            for pid in driver.pool.workers.keys where driver.pool.workers[pid]!.health.probing {
                driver.send(.probed(pid: pid, result: ProbeResult(ok: true, latency: .milliseconds(1), detail: "200")))
            }
        }
    }

    @Test("a deadline disarmed by an earlier one in the same pass is not handled: a worker killed at its ready timeout is not probed")
    func disarmedInThePassIsSkipped() {
        var driver = PoolDriver(desired: 1, policy: PoolPolicy.with {
            $0.readiness = .notify
            $0.readyTimeout = .seconds(10)
            $0.health.probePath = "/health"
            $0.health.probeInterval = .seconds(10)
        })
        driver.start()
        let actions = driver.advance(by: .seconds(10))
        #expect(actions.signals.contains { $0.signal == .kill })
        #expect(!actions.contains { if case .probe = $0 { true } else { false } })
    }
}
