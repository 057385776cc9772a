import Testing
@testable import SupervisorCore

/// Worker watchdogs, HTTP probes, the memory ceiling and systemd's watchdog, under a fake clock.
@Suite("Pool: health", .timeLimit(.minutes(1)))
struct PoolHealthTests {
    static func policy(_ change: (inout PoolPolicy) -> Void) -> PoolPolicy { PoolPolicy.with(change) }

    static func ping(_ driver: inout PoolDriver, slot: Int) {
        driver.send(.notified(pid: driver.pid(ofSlot: slot)!, message: NotifyMessage(watchdog: true)))
    }

    @Test("a worker that pinged and then went silent gets SIGABRT and SIGCONT at its deadline, its slot restarts at once, SIGKILL follows")
    func watchdogMissed() {
        var driver = PoolDriver(desired: 2, policy: Self.policy { $0.health.workerWatchdog = .seconds(2) })
        driver.start()
        let hung = driver.pid(ofSlot: 0)!
        Self.ping(&driver, slot: 0)
        Self.ping(&driver, slot: 1)
        driver.advance(by: .seconds(1))
        Self.ping(&driver, slot: 1)
        let fired = driver.advance(by: .milliseconds(1500))
        #expect(fired.signals.map(\.pid) == [hung, hung])
        #expect(fired.pids(sent: .abort) == [hung] && fired.pids(sent: .cont) == [hung])
        #expect(fired.logs(atLeast: .warning).contains("worker 0 (pid \(hung)): watchdog missed: no WATCHDOG=1 for 2s; sending SIGABRT"))
        #expect(fired.spawnedSlots == [0], "the slot restarts without waiting for the hung worker to go")
        #expect(driver.pid(ofSlot: 0) != hung)
        #expect(driver.pool.workers[hung]?.state == "aborting")
        Self.ping(&driver, slot: 1)
        var kill: [Action] = []
        for _ in 0..<5 {
            kill += driver.advance(by: .seconds(1))
            Self.ping(&driver, slot: 1)
        }
        #expect(kill.pids(sent: .kill) == [hung])
        #expect(kill.pids(sent: .abort).isEmpty, "the other worker kept pinging")
        let gone = driver.send(.exited(pid: hung, status: .signaled(9)))
        #expect(gone.spawnedSlots.isEmpty)
        #expect(driver.pool.isSettled)
    }

    @Test("a worker that never pinged is not held to the watchdog")
    func neverPinged() {
        var driver = PoolDriver(desired: 1, policy: Self.policy { $0.health.workerWatchdog = .seconds(1) })
        driver.start()
        #expect(driver.advance(by: .seconds(30)).signals.isEmpty)
    }

    @Test("WATCHDOG=trigger fires at once; WATCHDOG_USEC= moves the deadline")
    func triggerAndInterval() {
        var driver = PoolDriver(desired: 2, policy: Self.policy { $0.health.workerWatchdog = .seconds(2) })
        driver.start()
        let first = driver.pid(ofSlot: 0)!, second = driver.pid(ofSlot: 1)!
        let trigger = driver.send(.notified(pid: first, message: NotifyMessage(watchdogTrigger: true)))
        #expect(trigger.pids(sent: .abort) == [first])
        driver.send(.notified(pid: second, message: NotifyMessage(watchdog: true, watchdogInterval: .seconds(10))))
        #expect(driver.advance(by: .seconds(9)).pids(sent: .abort).isEmpty)
        #expect(driver.advance(by: .seconds(2)).pids(sent: .abort) == [second])
    }

    @Test("readiness http: a worker is ready at its first good probe, and probed again at the interval")
    func httpReadiness() {
        var driver = PoolDriver(desired: 1, policy: Self.policy {
            $0.readiness = .http
            $0.health.probePath = "/health"
        })
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        #expect(driver.pool.readyCount == 0)
        #expect(driver.advance(by: .milliseconds(250)).contains(.probe(pid: pid)))
        driver.send(.probed(pid: pid, result: ProbeResult(ok: false, latency: .milliseconds(1), detail: "cannot connect")))
        #expect(driver.pool.readyCount == 0)
        #expect(driver.advance(by: .milliseconds(250)).contains(.probe(pid: pid)))
        let ready = driver.send(.probed(pid: pid, result: ProbeResult(ok: true, latency: .milliseconds(1), detail: "HTTP 200")))
        #expect(driver.pool.readyCount == 1)
        #expect(ready.systemdNotices.contains(.ready))
        #expect(driver.advance(by: .seconds(9)).isEmpty)
        #expect(driver.advance(by: .seconds(1)).contains(.probe(pid: pid)))
    }

    @Test("failed probes of a ready worker count at once, grace or not; at the threshold a replacement starts and the unhealthy one drains once it is ready")
    func failingProbesReplace() {
        var driver = PoolDriver(desired: 1, policy: Self.policy {
            $0.readiness = .notify
            $0.health.probePath = "/health"
            $0.health.probeGrace = .seconds(15)
        })
        driver.start()
        driver.readyAll()
        let sick = driver.pid(ofSlot: 0)!
        let failure = ProbeResult(ok: false, latency: .milliseconds(3), detail: "HTTP 500")
        var replacement: [Action] = []
        for _ in 0..<3 {
            driver.advance(by: .seconds(10))
            replacement = driver.send(.probed(pid: sick, result: failure))
        }
        #expect(replacement.logs(atLeast: .warning).contains("worker 0 (pid \(sick)) is unhealthy: 3/3 health probes failed (last: HTTP 500); starting its replacement"))
        #expect(replacement.spawnedSlots == [0])
        #expect(replacement.pids(sent: .terminate).isEmpty, "capacity stays until the replacement is ready")
        let successor = driver.pool.slots[0].successor!.pid!
        let ready = driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
        #expect(ready.pids(sent: .terminate) == [sick])
        #expect(driver.pool.slots[0].lastFailure == "3/3 health probes failed (last: HTTP 500)")
    }

    @Test("an unhealthy worker whose replacement fails is killed and restarted the usual way")
    func replacementFails() {
        var driver = PoolDriver(desired: 1, policy: Self.policy {
            $0.readiness = .notify
            $0.health.probePath = "/health"
            $0.health.probeFailures = 1
            $0.health.probeGrace = .zero
        })
        driver.start()
        driver.readyAll()
        let sick = driver.pid(ofSlot: 0)!
        driver.advance(by: .seconds(10))
        driver.send(.probed(pid: sick, result: ProbeResult(ok: false, latency: .zero, detail: "HTTP 503")))
        let successor = driver.pool.slots[0].successor!.pid!
        let failed = driver.send(.exited(pid: successor, status: .exited(1)))
        #expect(failed.pids(sent: .kill) == [sick])
        let restarted = driver.send(.exited(pid: sick, status: .signaled(9)))
        #expect(restarted.spawnedSlots == [0])
    }

    @Test("a worker over max_memory is recycled after a jitter within one check interval")
    func memoryCeiling() {
        var driver = PoolDriver(desired: 2, policy: Self.policy { $0.health.maxMemory = 100 << 20 })
        driver.start()
        let big = driver.pid(ofSlot: 1)!, small = driver.pid(ofSlot: 0)!
        let check = driver.advance(by: .seconds(10))
        #expect(check.contains(.sampleMemory([small, big])))
        let sampled = driver.send(.memorySampled([small: 20 << 20, big: 150 << 20]))
        #expect(sampled.logs(atLeast: .notice).first?.hasPrefix("worker 1 (pid \(big)) uses 150 MiB, over max_memory (100 MiB); recycling it in") == true)
        let recycle = driver.advance(by: .seconds(10))
        #expect(recycle.spawnedSlots == [1])
        #expect(recycle.pids(sent: .terminate) == [big], "exec readiness: the replacement is ready at once")
    }

    @Test("systemd's watchdog is withheld once no worker has been ready for unready_timeout, and resumes when one is")
    func supervisorWatchdogRequiresReady() {
        var driver = PoolDriver(desired: 1, policy: Self.policy {
            $0.readiness = .notify
            $0.systemdWatchdogInterval = .seconds(5)
            $0.health.unreadyTimeout = .seconds(30)
            $0.readyTimeout = .seconds(1000)
        })
        driver.start()
        #expect(driver.advance(by: .seconds(25)).systemdNotices.filter { $0 == .watchdog }.count == 5)
        let withheld = driver.advance(by: .seconds(20))
        #expect(withheld.systemdNotices.filter { $0 == .watchdog }.count == 0)
        #expect(withheld.logs(atLeast: .error).count == 1)
        driver.readyAll()
        #expect(driver.advance(by: .seconds(5)).systemdNotices.contains(.watchdog))
    }

    @Test("with watchdog_requires_ready off, pings never stop")
    func supervisorWatchdogAlways() {
        var driver = PoolDriver(desired: 1, policy: Self.policy {
            $0.readiness = .notify
            $0.systemdWatchdogInterval = .seconds(5)
            $0.health.watchdogRequiresReady = false
            $0.readyTimeout = .seconds(1000)
        })
        driver.start()
        #expect(driver.advance(by: .seconds(200)).systemdNotices.filter { $0 == .watchdog }.count == 40)
    }

    @Test("a reload that turns max_memory on starts the memory checks; one that turns it off stops them")
    func reloadTurnsMaxMemoryOn() {
        var driver = PoolDriver(desired: 1)
        driver.start()
        let limited = Self.policy { $0.health.maxMemory = 100 << 20 }
        driver.send(.reloadRequested(release: 2, policy: limited))
        let pid = driver.pid(ofSlot: 0)!
        #expect(driver.advance(by: limited.health.memoryCheckInterval).contains(.sampleMemory([pid])))
        driver.send(.reloadRequested(release: 3, policy: .testDefault))
        #expect(driver.advance(by: .seconds(60)).filter { if case .sampleMemory = $0 { true } else { false } }.isEmpty)
    }

    @Test("a successor over max_memory is not recycled before it takes over, so no deadline is left in the past")
    func successorOverMaxMemory() {
        let policy = Self.policy { $0.readiness = .notify; $0.health.maxMemory = 100 << 20 }
        var driver = PoolDriver(desired: 1, policy: policy)
        driver.start()
        driver.readyAll()
        driver.send(.reloadRequested(release: 2, policy: policy))
        let successor = driver.pool.slots[0].successor!.pid!
        #expect(driver.send(.memorySampled([successor: 150 << 20])).logs(atLeast: .notice).isEmpty)
        // Before the fix its recycle deadline fell due, could not start a replacement, and stayed due: the loop spun.
        driver.advance(by: .seconds(2))
        #expect(driver.pool.nextDeadline.map { $0 > driver.now } ?? true)
        driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
        #expect(driver.send(.memorySampled([successor: 150 << 20])).logs(atLeast: .notice).count == 1, "judged once it serves")
    }
}
