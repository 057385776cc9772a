import Testing
@testable import SupervisorCore

/// The shell starts workers asynchronously: the `spawned` event comes a while after the `spawn` action
/// (the exec result is an event of its own, and a big scale-up is spread over several loop turns).
/// These tests hold the answer back, as the shell does, instead of answering at once like PoolDriver.
@Suite("Pool: spawns that complete later")
struct PoolSpawnTests {
    let t0 = Instant(nanoseconds: 1_000_000_000_000)

    /// A one-slot pool whose worker has failed twice, so its next restart waits for the backoff (1 s).
    func poolWaitingForRestart() -> Pool {
        var pool = Pool(desired: 1, policy: .testDefault)
        _ = pool.handle(.started, at: t0)
        _ = pool.handle(.spawned(slot: 0, generation: 1, pid: 100), at: t0)
        _ = pool.handle(.exited(pid: 100, status: .exited(1)), at: t0)
        _ = pool.handle(.spawned(slot: 0, generation: 2, pid: 101), at: t0)
        _ = pool.handle(.exited(pid: 101, status: .exited(1)), at: t0)
        return pool
    }

    @Test("a restart that fell due is asked for once; its deadline is gone while the start is pending")
    func dueRestartIsAskedForOnce() {
        var pool = poolWaitingForRestart()
        #expect(pool.nextDeadline == t0 + .seconds(1))
        let due = pool.handle(.deadlineReached, at: t0 + .seconds(1))
        #expect(due.spawnedSlots == [0])
        // Before the fix the restart stayed due: the timerfd fired at once, again and again, each time
        // asking for the same start, until the exec result came back.
        #expect(pool.nextDeadline == nil)
        let again = pool.handle(.deadlineReached, at: t0 + .milliseconds(1001))
        #expect(again.spawnedSlots == [])
        #expect(pool.wantsSpawn(slot: 0, generation: 3))
    }

    @Test("a start that fails after its restart fell due is retried after the next backoff")
    func failedPendingStartBacksOff() {
        var pool = poolWaitingForRestart()
        _ = pool.handle(.deadlineReached, at: t0 + .seconds(1))
        _ = pool.handle(.spawnFailed(slot: 0, generation: 3, reason: "start /srv/app: Exec format error"), at: t0 + .milliseconds(1002))
        #expect(pool.slots[0].lastFailure == "start /srv/app: Exec format error")
        #expect(pool.nextDeadline == t0 + .milliseconds(1002) + .seconds(2))
    }

    @Test("a slot removed by a scale-down no longer wants the worker it asked for")
    func scaleDownCancelsPendingStarts() {
        var pool = Pool(desired: 2, policy: .testDefault)
        _ = pool.handle(.started, at: t0)
        let up = pool.handle(.desiredCountChanged(6), at: t0)
        #expect(up.spawnedSlots == [2, 3, 4, 5])
        #expect(pool.wantsSpawn(slot: 5, generation: 1))
        _ = pool.handle(.desiredCountChanged(3), at: t0)
        #expect(pool.wantsSpawn(slot: 2, generation: 1))
        #expect(!pool.wantsSpawn(slot: 3, generation: 1))
        #expect(!pool.wantsSpawn(slot: 5, generation: 1))
    }

    @Test("once a slot's worker started, the same generation is not wanted again; nothing is once the stop began")
    func startedOrStoppingWantsNothing() {
        var pool = Pool(desired: 2, policy: .testDefault)
        _ = pool.handle(.started, at: t0)
        _ = pool.handle(.spawned(slot: 0, generation: 1, pid: 100), at: t0)
        #expect(!pool.wantsSpawn(slot: 0, generation: 1))
        #expect(pool.wantsSpawn(slot: 1, generation: 1))
        _ = pool.handle(.signalReceived(.terminate), at: t0)
        #expect(!pool.wantsSpawn(slot: 1, generation: 1))
    }
}
