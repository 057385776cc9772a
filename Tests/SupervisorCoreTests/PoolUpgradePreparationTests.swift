import ControlProtocol
import Testing
@testable import SupervisorCore

/// The upgrade's preflight runs while the loop serves (the shell's `checkUpgrade`); these are the admission
/// rules that hold meanwhile and what its answer leads to. Fake clock, no processes.
@Suite("Upgrade preparation")
struct PoolUpgradePreparationTests {
    static let policy = PoolPolicy.with { $0.readiness = .notify; $0.minReady = .zero }
    static let path = "/usr/bin/hyperglass-supervisor"
    static let upgrade = Intent.upgrade(path: path, wait: true)

    /// Three ready workers and an upgrade asked for by client 7, its check under way.
    private func preparing(policy: PoolPolicy = policy) -> PoolDriver {
        var driver = PoolDriver(desired: 3, policy: policy)
        driver.start()
        driver.readyAll()
        driver.send(.requested(Self.upgrade, by: .client(7)))
        return driver
    }

    private func refusal(_ actions: [Action], to fd: Int32) -> String? {
        actions.lazy.compactMap { if case .reply(fd, .refused(let why)) = $0 { why } else { nil } }.first
    }

    private func execs(_ actions: [Action]) -> Bool { actions.contains { if case .execUpgrade = $0 { true } else { false } } }

    @Test("an admitted upgrade starts its check and answers later: no exec until the check has said yes")
    func admittedUpgradeIsChecked() {
        var driver = PoolDriver(desired: 3, policy: Self.policy)
        driver.start()
        driver.readyAll()
        let admitted = driver.send(.requested(Self.upgrade, by: .client(7)))
        #expect(admitted.contains(.reply(to: 7, .upgradePreparing)))
        #expect(admitted.contains(.checkUpgrade(path: Self.path, for: .client(7))))
        #expect(!execs(admitted))
        #expect(driver.pool.upgradePreparation?.requester == .client(7))
        #expect(driver.lastStatus == "3/3 workers ready; checking \(Self.path) for an upgrade in place", "STATUS= and status say what waits")
        driver.advance(by: .seconds(3))
        let answered = driver.send(.upgradeChecked(path: Self.path, newVersion: "0.2.0", for: .client(7)))
        #expect(answered.contains(.execUpgrade(path: Self.path, newVersion: "0.2.0", wait: true, for: .client(7))))
        #expect(driver.pool.upgradePreparation == nil)
    }

    @Test("a check that says no (or times out) is answered as a refusal, and the next upgrade is admitted again")
    func refusedCheckEndsThePreparation() {
        var driver = preparing()
        let failed = driver.send(.upgradeFailed(reason: "cannot upgrade: /x upgrade-check did not answer within 5s; nothing changed", for: .client(7)))
        #expect(refusal(failed, to: 7)?.contains("did not answer within 5s") == true)
        #expect(driver.pool.upgradePreparation == nil)
        #expect(driver.send(.requested(Self.upgrade, by: .client(9))).contains(.checkUpgrade(path: Self.path, for: .client(9))))
    }

    @Test("a second upgrade while one is prepared is refused, saying which one and to wait for its answer")
    func secondUpgradeRefused() {
        var driver = preparing()
        driver.advance(by: .seconds(2))
        let second = driver.send(.requested(.upgrade(path: nil, wait: false), by: .client(9)))
        #expect(refusal(second, to: 9) == "cannot upgrade: an upgrade to \(Self.path) is being prepared (its check started 2 s ago); wait for its answer")
        #expect(!second.contains { if case .checkUpgrade = $0 { true } else { false } })
        #expect(driver.pool.upgradePreparation?.requester == .client(7))
    }

    @Test("reload, restart and a new count, asked or signalled while an upgrade is prepared, are refused and change nothing")
    func otherIntentsRefused() {
        var driver = preparing()
        let before = driver.pool.slots
        for intent in [Intent.reload, .restart(slots: nil), .workers(.to(5)), .workers(.by(-1))] {
            let actions = driver.send(.requested(intent, by: .client(9)))
            #expect(refusal(actions, to: 9)?.contains("an upgrade to \(Self.path) is being prepared") == true, "\(intent): \(actions)")
            #expect(actions.spawnedSlots.isEmpty && !actions.contains { if case .readConfiguration = $0 { true } else { false } })
        }
        for signal in [Signal.hangup, .ttin, .ttou] {
            let actions = driver.send(.signalReceived(signal))
            #expect(actions.logs(atLeast: .warning).contains { $0.contains("is being prepared") }, "\(signal): \(actions)")
        }
        #expect(driver.pool.slots == before)
        #expect(driver.pool.roll == nil)
        // The upgrade asked first goes on.
        #expect(execs(driver.send(.upgradeChecked(path: Self.path, newVersion: "0.2.0", for: .client(7)))))
    }

    @Test("a stop while an upgrade is prepared wins: the check is cancelled, the client told, the drain begins")
    func stopAbandonsTheUpgrade() {
        var driver = preparing()
        let pids = driver.pool.workers.keys.sorted()
        let stop = driver.send(.signalReceived(.terminate))
        #expect(stop.contains(.cancelUpgradeCheck))
        #expect(refusal(stop, to: 7) == "upgrade abandoned: the supervisor is stopping; nothing changed")
        #expect(stop.pids(sent: .terminate) == pids)
        #expect(driver.pool.upgradePreparation == nil)
        // The next upgrade is refused for the stop, not for the abandoned one.
        #expect(refusal(driver.send(.requested(Self.upgrade, by: .client(9))), to: 9) == "cannot upgrade: the supervisor is stopping")
    }

    @Test("a lame duck abandons an upgrade being prepared too")
    func lameDuckAbandonsTheUpgrade() {
        var driver = preparing(policy: .with { $0.readiness = .notify; $0.minReady = .zero; $0.lameDuck = .seconds(5) })
        let stop = driver.send(.signalReceived(.terminate))
        #expect(stop.contains(.cancelUpgradeCheck))
        #expect(refusal(stop, to: 7)?.hasPrefix("upgrade abandoned") == true)
        #expect(!execs(driver.send(.upgradeChecked(path: Self.path, newVersion: "0.2.0", for: .client(7)))))
    }

    @Test("a worker that crashes during the check is restarted meanwhile, and the exec follows once the check says yes")
    func crashDuringTheCheckIsServed() {
        var driver = preparing()
        let crashed = driver.exit(slot: 1, status: .signaled(9))
        #expect(crashed.contains { if case .report(let report) = $0 { report.kind == .exited } else { false } })
        // At once or after the backoff: a restart either way, while the check runs.
        let restarted = crashed + driver.advance(by: .seconds(2))
        #expect(restarted.spawnedSlots == [1])
        driver.ready(slot: 1)
        #expect(execs(driver.send(.upgradeChecked(path: Self.path, newVersion: "0.2.0", for: .client(7)))))
    }

    @Test("a pool no longer at rest when the check says yes refuses the exec with why")
    func notAtRestAtTheAnswer() {
        var driver = preparing(policy: .with { $0.readiness = .notify; $0.minReady = .zero; $0.health.workerWatchdog = .seconds(2) })
        // A worker pings its watchdog once, then misses it during the check: aborted, replaced, still stopping.
        driver.send(.notified(pid: driver.pid(ofSlot: 0)!, message: NotifyMessage(watchdog: true)))
        driver.advance(by: .seconds(3))
        let answered = driver.send(.upgradeChecked(path: Self.path, newVersion: "0.2.0", for: .client(7)))
        #expect(!execs(answered))
        #expect(refusal(answered, to: 7)?.hasPrefix("cannot upgrade now") == true, "\(answered)")
        #expect(driver.pool.upgradePreparation == nil)
    }
}
