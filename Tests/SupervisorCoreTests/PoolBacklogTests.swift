import ControlProtocol
import Testing
@testable import SupervisorCore

/// `backlog_wait`: connections that wait on a listener and no worker takes. A reload proves its new workers
/// once they serve alone; readiness says no while a look shows such a wait.
@Suite("Pool: connections nobody accepts (backlog_wait)", .timeLimit(.minutes(1)))
struct PoolBacklogTests {
    static let policy = PoolPolicy.with { $0.readiness = .notify; $0.minReady = .zero; $0.health.backlogWait = .seconds(2) }

    static func running(_ desired: Int, policy: PoolPolicy = policy) -> PoolDriver {
        var driver = PoolDriver(desired: desired, policy: policy)
        driver.start()
        driver.readyAll()
        return driver
    }

    /// Every successor of the roll says READY=1 and every predecessor exits, as the shell would see them.
    static func takeOver(_ driver: inout PoolDriver) {
        for slot in driver.pool.slots.indices {
            guard let successor = driver.pool.slots[slot].successor?.pid else { continue }
            let old = driver.pid(ofSlot: slot)!
            driver.send(.notified(pid: successor, message: NotifyMessage(ready: true)))
            driver.send(.exited(pid: old, status: .exited(0)))
        }
    }

    static func waiting(_ count: Int, for age: Duration?) -> [ListenerBacklog] {
        [ListenerBacklog(address: "127.0.0.1:8001", waiting: count, oldestWait: age)]
    }

    @Test("a reload whose slots all took over ends only after backlog_wait with no connection waiting that long; READY=1 comes then")
    func reloadProvesItsWorkers() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.policy))
        let before = driver.history.count
        Self.takeOver(&driver)
        #expect(driver.pool.roll != nil, "every slot took over, and the new workers have not yet served alone")
        #expect(driver.lastStatus == "rolling: 2/2 new, checking that they take connections; 2/2 workers ready")
        #expect(!Array(driver.history[before...]).systemdNotices.contains(.ready))
        // Connections come and go, none waits long: the check passes.
        driver.listenerBacklog = { _ in Self.waiting(1, for: .milliseconds(3)) }
        driver.advance(by: .milliseconds(2400))
        #expect(driver.pool.roll != nil)
        let end = driver.advance(by: .milliseconds(200))
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.succeeded == true, "\(String(describing: driver.pool.lastRoll))")
        #expect(driver.pool.lastRoll?.summary.hasPrefix("reload complete: 2 workers replaced in 2.5") == true, "\(driver.pool.lastRoll!.summary)")
        #expect(end.systemdNotices.contains(.ready))
        #expect(driver.history.filter { if case .sampleBacklog = $0 { true } else { false } }.count == 5, "four looks per backlog_wait, and the last")
    }

    @Test("a reload whose new workers leave a connection waiting backlog_wait fails and rolls every slot back; the outcome says why")
    func stalledReloadRollsBack() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.policy))
        Self.takeOver(&driver)
        let provingSince = driver.now
        driver.listenerBacklog = { now in Self.waiting(4, for: .milliseconds(300) + (now - provingSince)) }
        driver.advance(by: .seconds(2))
        #expect(driver.pool.roll?.kind == .rollback, "\(String(describing: driver.pool.roll))")
        #expect(driver.pool.release == 1)
        #expect(driver.pool.roll?.failure?.contains("reload failed: the new workers do not take connections (4 connections on 127.0.0.1:8001 waiting unaccepted, the oldest for") == true,
                "\(String(describing: driver.pool.roll?.failure))")
        let broken = driver.pool.slots.map { $0.pid! }
        // The old release's workers come back, serve (the queue empties), and the broken ones drain.
        driver.listenerBacklog = { _ in Self.waiting(0, for: nil) }
        for slot in driver.pool.slots.indices {
            let successor = driver.pool.slots[slot].successor!.pid!
            #expect(driver.send(.notified(pid: successor, message: NotifyMessage(ready: true))).pids(sent: .terminate) == [broken[slot]])
        }
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.succeeded == false)
        #expect(driver.pool.lastRoll?.summary.contains("do not take connections") == true)
        #expect(driver.pool.slots.allSatisfy { $0.release == 1 })
    }

    @Test("a saturated pool (connections wait longer than backlog_wait, yet every look sees a connection taken that the look before did not) completes its reload")
    func saturatedPoolTakesConnections() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.policy))
        Self.takeOver(&driver)
        // Two workers, each busy with one connection it took since the last look; six wait 2.4 s.
        var next: UInt64 = 100
        driver.listenerBacklog = { _ in
            next += 2
            return [ListenerBacklog(address: "127.0.0.1:8001", waiting: 6, oldestWait: .milliseconds(2400), taken: [next, next + 1])]
        }
        driver.advance(by: .milliseconds(2600))
        #expect(driver.pool.roll != nil, "connections waited backlog_wait: one backlog_wait more of watching")
        driver.advance(by: .seconds(2))
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.succeeded == true, "\(String(describing: driver.pool.lastRoll))")
        #expect(driver.pool.backlogStall != nil, "readiness still says the connections wait too long")
    }

    @Test("new workers that take a connection a moment after the watch began, then none: the watch goes on past its end and the reload rolls back once the looks saw none taken for backlog_wait")
    func takesOneThenWedges() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.policy))
        Self.takeOver(&driver)
        let provingSince = driver.now
        driver.listenerBacklog = { now in
            // One connection taken between the first and second look; the queue grows from the start.
            let taken: Set<UInt64> = now - provingSince < .milliseconds(700) ? [] : [42]
            return [ListenerBacklog(address: "127.0.0.1:8001", waiting: 5, oldestWait: .milliseconds(400) + (now - provingSince), taken: taken)]
        }
        driver.advance(by: .milliseconds(2600))
        #expect(driver.pool.roll?.kind == .reload, "taken 1.5 s ago: not yet a stall, and not done either")
        driver.advance(by: .milliseconds(500))
        #expect(driver.pool.roll?.kind == .rollback, "\(String(describing: driver.pool.roll))")
    }

    @Test("a reload whose looks see the same connections taken (the old workers' kept-alive ones) and one waiting backlog_wait rolls back, as soon as the looks span backlog_wait")
    func noConnectionTakenRollsBack() {
        var driver = Self.running(2)
        // Looks before the reload saw other connections: they do not count for the new workers.
        driver.send(.backlogSampled([ListenerBacklog(address: "127.0.0.1:8001", waiting: 1, oldestWait: .milliseconds(5), taken: [1])]))
        driver.send(.reloadRequested(release: 2, policy: Self.policy))
        Self.takeOver(&driver)
        let provingSince = driver.now
        driver.listenerBacklog = { now in
            // The old workers' connections close over time (the set shrinks); nothing new is taken.
            let taken: Set<UInt64> = now - provingSince < .seconds(1) ? [7, 8, 9] : [8]
            return [ListenerBacklog(address: "127.0.0.1:8001", waiting: 4, oldestWait: .milliseconds(300) + (now - provingSince), taken: taken)]
        }
        driver.advance(by: .milliseconds(2400))
        #expect(driver.pool.roll?.kind == .reload, "the looks span 1.5 s of backlog_wait's 2 s: \(String(describing: driver.pool.roll))")
        driver.advance(by: .milliseconds(200))
        #expect(driver.pool.roll?.kind == .rollback, "\(String(describing: driver.pool.roll))")
        #expect(driver.pool.roll?.failure?.contains("do not take connections") == true)
    }

    @Test("a unix listener, whose kernel tells no age: a queue non-empty at every look for backlog_wait is a stall; one empty look resets it")
    func queueWithoutAges() {
        var driver = Self.running(1)
        func look(_ waiting: Int) { driver.send(.backlogSampled([ListenerBacklog(address: "unix:/run/app.sock", waiting: waiting, oldestWait: nil)])) }
        look(2)
        driver.advance(by: .seconds(1))
        look(3)
        driver.advance(by: .milliseconds(500))
        look(0)
        driver.advance(by: .milliseconds(500))
        look(1)
        driver.advance(by: .milliseconds(1900))
        look(1)
        #expect(driver.pool.backlogStall == nil, "non-empty for 1.9 s since the empty look")
        driver.advance(by: .milliseconds(100))
        look(1)
        #expect(driver.pool.backlogStall == BacklogStall(address: "unix:/run/app.sock", waited: .seconds(2), waiting: 1))

        // A reload whose queue never empties while it proves rolls back at the last look.
        driver.send(.reloadRequested(release: 2, policy: Self.policy))
        Self.takeOver(&driver)
        driver.listenerBacklog = { _ in [ListenerBacklog(address: "unix:/run/app.sock", waiting: 2, oldestWait: nil)] }
        driver.advance(by: .milliseconds(2600))
        #expect(driver.pool.roll?.kind == .rollback, "\(String(describing: driver.pool.roll))")
    }

    @Test("a unix listener whose kernel tells its queued connections apart: each is timed from the first look that saw it, so a queue never empty but always of new connections is no stall")
    func queuedConnectionsTimedOneByOne() {
        var driver = Self.running(1)
        func look(_ queued: Set<UInt64>) {
            driver.send(.backlogSampled([ListenerBacklog(address: "unix:/run/app.sock", waiting: queued.count, oldestWait: nil, queued: queued)]))
        }
        look([1, 2])
        driver.advance(by: .seconds(3))
        look([3, 4])
        #expect(driver.pool.backlogStall == nil, "other connections than 3 s ago: \(String(describing: driver.pool.backlogStall))")
        driver.advance(by: .seconds(1))
        look([4, 5])
        driver.advance(by: .milliseconds(1900))
        look([5, 6])
        #expect(driver.pool.backlogStall == nil, "5 was first seen 1.9 s ago")
        driver.advance(by: .milliseconds(100))
        look([5, 6, 7])
        #expect(driver.pool.backlogStall == BacklogStall(address: "unix:/run/app.sock", waited: .seconds(2), waiting: 3))
        look([])
        #expect(driver.pool.backlogStall == nil)
    }

    @Test("readiness and status say no while a look shows a stall, and yes at the next look that shows none")
    func readinessFollowsTheLook() {
        var driver = Self.running(2)
        #expect(HealthEndpoints.readiness(driver.pool, share: 0.5, at: driver.now).ok)
        let stalled = driver.send(.backlogSampled(Self.waiting(7, for: .milliseconds(2500))))
        let answer = HealthEndpoints.readiness(driver.pool, share: 0.5, at: driver.now)
        #expect(!answer.ok)
        #expect(answer.text.contains("7 connections on 127.0.0.1:8001 waiting unaccepted, the oldest for 2.5s (backlog_wait): no worker takes them"), "\(answer.text)")
        #expect(stalled.contains(.log(.warning, "7 connections on 127.0.0.1:8001 waiting unaccepted, the oldest for 2.5s (backlog_wait): no worker takes them")))
        #expect(driver.send(.backlogSampled(Self.waiting(7, for: .milliseconds(1900)))).isEmpty == false, "the log says when it clears")
        #expect(HealthEndpoints.readiness(driver.pool, share: 0.5, at: driver.now).ok)
        driver.send(.backlogSampled(Self.waiting(1, for: .seconds(30))))
        #expect(driver.pool.backlogStall?.waited == .seconds(30))
        driver.send(.backlogSampled([]))
        #expect(driver.pool.backlogStall == nil, "a listener no look could read is no stall")
    }

    @Test("backlog_wait 0 judges nothing: a reload ends when its last slot took over, and a queue never makes the pool unready")
    func zeroTurnsItOff() {
        let off = PoolPolicy.with { $0.readiness = .notify; $0.minReady = .zero; $0.health.backlogWait = .zero }
        var driver = Self.running(2, policy: off)
        driver.send(.backlogSampled(Self.waiting(9, for: .seconds(60))))
        #expect(HealthEndpoints.readiness(driver.pool, share: 0.5, at: driver.now).ok)
        driver.send(.reloadRequested(release: 2, policy: off))
        Self.takeOver(&driver)
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.succeeded == true)
        #expect(!driver.history.contains(.sampleBacklog))
    }

    @Test("a restart (same release) and a rollback do not prove: there is nothing to go back to")
    func restartDoesNotProve() {
        var driver = Self.running(2)
        driver.send(.restartRequested(slots: [0, 1]))
        Self.takeOver(&driver)
        #expect(driver.pool.roll == nil)
        #expect(driver.pool.lastRoll?.succeeded == true)
    }

    @Test("a stop while a reload proves: no more looks, the pool drains and exits")
    func stopWhileProving() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.policy))
        Self.takeOver(&driver)
        driver.send(.signalReceived(.terminate))
        #expect(!driver.pool.armedDeadlines.contains { $0.deadline == .backlogLook })
        for pid in driver.pool.workers.keys.sorted() { driver.send(.exited(pid: pid, status: .exited(0))) }
        #expect(driver.pool.phase == .exited)
    }
}
