import Testing
@testable import SupervisorCore

/// Reload, restart and rollback: successors start beside the current workers and take over only when ready.
@Suite("Pool: rolling restarts", .timeLimit(.minutes(1)))
struct PoolRollTests {
    static let notify = PoolPolicy.with { $0.readiness = .notify }

    /// A running pool of `desired` workers, all ready, with notify readiness.
    static func running(_ desired: Int, policy: PoolPolicy = notify) -> PoolDriver {
        var driver = PoolDriver(desired: desired, policy: policy)
        driver.start()
        driver.readyAll()
        return driver
    }

    @Test("each reload step tells systemd it needs ready_timeout + min_ready + 5 s more, so a long roll is never timed out; a restart does not")
    func reloadStepsExtendSystemdTimeout() {
        let policy = PoolPolicy.with { $0.readiness = .notify; $0.readyTimeout = .seconds(20); $0.minReady = .zero }
        var driver = Self.running(3, policy: policy)
        let extend = SystemdNotice.extendTimeout(.seconds(25))
        let begin = driver.send(.reloadRequested(release: 2, policy: policy))
        #expect(begin.systemdNotices.first == .reloading(at: driver.now))
        #expect(begin.systemdNotices.contains(extend))
        for slot in 0..<3 {
            let successor = driver.pool.slots[slot].successor!.pid!
            let ready = driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
            // A step that starts the next successor extends again; the last one ends the roll with READY=1.
            #expect(ready.systemdNotices.contains(extend) == (slot < 2), "slot \(slot): \(ready.systemdNotices)")
        }
        #expect(driver.history.systemdNotices.contains(.ready))
        let restart = driver.send(.restartRequested(slots: [0, 1, 2]))
        #expect(!restart.systemdNotices.contains { if case .extendTimeout = $0 { true } else { false } })
    }

    @Test("a reload replaces one slot at a time, each successor ready before its predecessor is asked to stop")
    func reloadRollsOneByOne() {
        var driver = Self.running(3)
        let old = (0..<3).map { driver.pid(ofSlot: $0)! }
        var lowestReady = Int.max
        driver.observer = { _, _, pool, _ in lowestReady = min(lowestReady, pool.readyCount) }

        let begin = driver.send(.reloadRequested(release: 2, policy: Self.notify))
        #expect(begin.systemdNotices.contains(.reloading(at: driver.now)))
        #expect(begin.contains(.spawn(slot: 0, generation: 2, release: 2)))
        #expect(begin.spawnedSlots == [0])
        #expect(begin.pids(sent: .terminate).isEmpty)
        #expect(driver.lastStatus == "rolling: 0/3 new, 1 starting, 0 settling, 0 failed; 3/3 workers ready")

        for slot in 0..<3 {
            let successor = driver.pool.slots[slot].successor!.pid!
            let ready = driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
            #expect(ready.pids(sent: .terminate) == [old[slot]])
            #expect(driver.pid(ofSlot: slot) == successor)
            #expect(ready.spawnedSlots == (slot < 2 ? [slot + 1] : []))
            driver.send(.exited(pid: old[slot], status: .exited(0)))
        }
        #expect(lowestReady == 3)
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.succeeded == true)
        #expect(driver.pool.lastRoll?.summary.hasPrefix("reload complete: 3 workers replaced in") == true)
        #expect(driver.history.systemdNotices.contains(.ready))
        #expect(driver.pool.slots.allSatisfy { $0.release == 2 })
        #expect(driver.lastStatus == "3/3 workers ready")
    }

    @Test("with exec readiness a successor is ready at once and the whole roll happens in one step")
    func execReadinessRollsAtOnce() {
        var driver = PoolDriver(desired: 2)
        driver.start()
        let actions = driver.send(.reloadRequested(release: 2, policy: .testDefault))
        #expect(actions.spawnedSlots == [0, 1])
        #expect(actions.pids(sent: .terminate) == [100, 101])
        #expect(driver.pool.lastRoll?.succeeded == true)
    }

    @Test("max_surge starts that many successors at once")
    func maxSurge() {
        var policy = Self.notify
        policy.maxSurge = .count(2)
        var driver = Self.running(4, policy: policy)
        let begin = driver.send(.reloadRequested(release: 2, policy: policy))
        #expect(begin.spawnedSlots == [0, 1])
        let successor = driver.pool.slots[1].successor!.pid!
        #expect(driver.send(.notified(pid: successor, message: NotifyMessage(ready: true))).spawnedSlots == [2])
    }

    @Test("a successor that fails at the first slot stops the reload; the old workers and settings stay")
    func failureAtFirstSlot() {
        var driver = Self.running(2)
        var newPolicy = Self.notify
        newPolicy.readyTimeout = .seconds(5)
        driver.send(.reloadRequested(release: 2, policy: newPolicy))
        #expect(driver.pool.policy.readyTimeout == .seconds(5))
        let successor = driver.pool.slots[0].successor!.pid!
        let failed = driver.send(.exited(pid: successor, status: .exited(3)))
        #expect(failed.pids(sent: .terminate).isEmpty)
        #expect(failed.spawnedSlots.isEmpty)
        #expect(failed.logs(atLeast: .error).contains("reload failed at worker 0 (1/2): exit status 3 before ready; kept the previous version"))
        #expect(failed.systemdNotices.contains(.ready))
        #expect(driver.pool.release == 1)
        #expect(driver.pool.policy == Self.notify, "the previous settings are back")
        #expect(driver.pool.lastRoll == RollOutcome(id: 1, kind: .reload, succeeded: false,
                                                    summary: "reload failed at worker 0 (1/2): exit status 3 before ready; kept the previous version"))
        #expect(driver.pool.readyCount == 2)
        #expect(driver.lastStatus == "2/2 workers ready; reload failed at worker 0 (1/2): exit status 3 before ready; kept the previous version")
    }

    @Test("a failure part-way rolls the replaced slots back to the previous release, one at a time")
    func rollbackAfterPartialRoll() {
        var driver = Self.running(3)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        let first = driver.pool.slots[0].successor!.pid!
        driver.send(.notified(pid: first, message: NotifyMessage(ready: true)))
        let second = driver.pool.slots[1].successor!.pid!
        let failed = driver.send(.exited(pid: second, status: .signaled(11)))
        #expect(failed.contains(.spawn(slot: 0, generation: 3, release: 1)))
        #expect(driver.pool.roll?.kind == .rollback)
        #expect(driver.lastStatus == "rolling back: 0/1 restored, 1 starting, 0 settling, 1 failed; 3/3 workers ready")
        let restored = driver.pool.slots[0].successor!.pid!
        let done = driver.send(.notified(pid: restored, message: NotifyMessage(ready: true)))
        #expect(done.pids(sent: .terminate) == [first])
        #expect(driver.pool.slots.allSatisfy { $0.release == 1 })
        #expect(driver.pool.lastRoll?.succeeded == false)
        #expect(driver.pool.lastRoll?.id == 1)
        #expect(driver.pool.lastRoll?.summary == "reload failed at worker 1 (2/3): killed by SIGSEGV before ready; kept the previous version")
        #expect(done.systemdNotices.contains(.ready))
    }

    @Test("a successor that is never ready is killed at ready_timeout and the reload fails")
    func successorReadyTimeout() {
        var driver = Self.running(1)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        let successor = driver.pool.slots[0].successor!.pid!
        let timeout = driver.advance(by: .seconds(61))
        #expect(timeout.pids(sent: .kill) == [successor])
        let exit = driver.send(.exited(pid: successor, status: .signaled(9)))
        #expect(exit.logs(atLeast: .error).contains("reload failed at worker 0 (1/1): not ready within 1m; kept the previous version"))
    }

    @Test("a second reload or restart while one runs is refused, never interleaved")
    func noInterleaving() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        #expect(driver.pool.refusal(of: .reload, at: driver.now) == "cannot reload now: a reload is in progress (0/2 workers replaced); try again when it has finished")
        let again = driver.send(.restartRequested(slots: [1]))
        #expect(again.spawnedSlots.isEmpty)
        #expect(driver.pool.roll?.kind == .reload && driver.pool.roll?.id == 1)
    }

    @Test("restart replaces one worker on its own release, gracefully")
    func restartOne() {
        var driver = Self.running(2)
        let old = driver.pid(ofSlot: 1)!
        let begin = driver.send(.restartRequested(slots: [1]))
        #expect(begin.contains(.spawn(slot: 1, generation: 2, release: 1)))
        #expect(!begin.systemdNotices.contains { if case .reloading = $0 { true } else { false } })
        let successor = driver.pool.slots[1].successor!.pid!
        let ready = driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
        #expect(ready.pids(sent: .terminate) == [old])
        #expect(driver.pool.lastRoll?.summary.hasPrefix("restart complete: 1 worker replaced") == true)
    }

    @Test("SIGTERM during a roll drains successors too and ends the roll as interrupted")
    func stopDuringRoll() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        let successor = driver.pool.slots[0].successor!.pid!
        let stop = driver.send(.signalReceived(.terminate))
        #expect(Set(stop.pids(sent: .terminate)) == Set(driver.pool.workers.keys))
        #expect(stop.pids(sent: .terminate).contains(successor))
        #expect(driver.pool.lastRoll?.summary == "reload interrupted: the supervisor is stopping")
        #expect(driver.exitAll().exitCodes == [0])
    }

    @Test("scaling down during a roll drops the removed slots from it")
    func scaleDownDuringRoll() {
        var driver = Self.running(3)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        driver.send(.desiredCountChanged(1))
        #expect(driver.pool.roll?.queue == [])
        let successor = driver.pool.slots[0].successor!.pid!
        driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
        #expect(driver.pool.lastRoll?.succeeded == true)
    }

    @Test("a slot's worker that dies while its successor starts is not restarted: the successor takes over")
    func predecessorDiesDuringRoll() {
        var driver = Self.running(1)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        let crash = driver.exit(slot: 0, status: .exited(1))
        #expect(crash.spawnedSlots.isEmpty)
        let successor = driver.pool.slots[0].successor!.pid!
        driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
        #expect(driver.pid(ofSlot: 0) == successor)
        #expect(driver.pool.isSettled)
    }

    @Test("a successor failing where the predecessor is gone too leaves the slot restarting, not empty")
    func bothGone() {
        var driver = Self.running(1)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        let successor = driver.pool.slots[0].successor!.pid!
        driver.exit(slot: 0, status: .exited(1))
        let failed = driver.send(.exited(pid: successor, status: .exited(3)))
        #expect(failed.contains(.spawn(slot: 0, generation: 3, release: 1)))
        #expect(driver.pid(ofSlot: 0) != nil)
    }

    @Test("an invalid configuration changes nothing and says why in STATUS=")
    func rejected() {
        var driver = Self.running(2)
        let actions = driver.send(.reloadRejected(reason: "/etc/hyperglass/supervisor.conf:3: unknown key 'wrkers'"))
        #expect(actions.spawnedSlots.isEmpty && actions.signals.isEmpty)
        #expect(driver.pool.lastRoll?.succeeded == false)
        #expect(driver.lastStatus == "2/2 workers ready; reload refused, nothing changed: /etc/hyperglass/supervisor.conf:3: unknown key 'wrkers'")
    }

    @Test("a reload that finds a slot replacing an unhealthy worker moves that slot to the new release after the replacement")
    func reloadAfterUnhealthyReplacement() {
        let policy = PoolPolicy.with { $0.readiness = .notify; $0.health.maxMemory = 100 << 20 }
        var driver = Self.running(1, policy: policy)
        let unhealthy = driver.pid(ofSlot: 0)!
        driver.send(.memorySampled([unhealthy: 150 << 20]))
        #expect(driver.advance(by: policy.health.memoryCheckInterval).spawnedSlots == [0])
        let replacement = driver.pool.slots[0].successor!.pid!
        driver.send(.reloadRequested(release: 2, policy: policy))
        // The replacement runs release 1: it takes over, then the slot still gets its release-2 successor.
        let promoted = driver.send(.notified(pid: replacement, message: NotifyMessage(ready: true)))
        #expect(promoted.pids(sent: .terminate) == [unhealthy])
        #expect(promoted.contains(.spawn(slot: 0, generation: 3, release: 2)))
        #expect(driver.pool.roll != nil && driver.pool.lastRoll == nil)
        let successor = driver.pool.slots[0].successor!.pid!
        let done = driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
        #expect(done.pids(sent: .terminate) == [replacement])
        #expect(driver.pool.lastRoll?.succeeded == true)
        #expect(driver.pool.slots[0].release == 2 && driver.pool.workers[successor]?.release == 2)
    }

    @Test("a reload failure that sets off crash_loop = exit stops the pool: no rollback and no restart while stopping")
    func reloadFailureIntoCrashLoopExit() {
        let policy = PoolPolicy.with { $0.readiness = .notify; $0.maxSurge = .count(3); $0.crashLoop = .exit; $0.crashLoopThreshold = 1 }
        var driver = Self.running(4, policy: policy)
        driver.send(.reloadRequested(release: 2, policy: policy))
        driver.send(.notified(pid: driver.pool.slots[0].successor!.pid!, message: NotifyMessage(ready: true)))
        #expect(driver.pool.roll?.active == [1, 2, 3])
        // Slots 2 and 3 lose their own workers while their successors start: nothing to restart yet.
        driver.exit(slot: 2)
        driver.exit(slot: 3)
        #expect(driver.pool.phase == .running)
        // Slot 1's successor fails: the others are killed, slot 2 has nothing left and fails: a crash loop.
        let failed = driver.send(.exited(pid: driver.pool.slots[1].successor!.pid!, status: .exited(3)))
        #expect(driver.pool.phase == .stopping(exitCode: 1))
        #expect(failed.spawnedSlots.isEmpty, "before the fix: a rollback of slot 0 and a restart of slot 3, while stopping")
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.summary == "reload interrupted: the supervisor is stopping")
        #expect(!failed.systemdNotices.contains(.ready))
    }
}
