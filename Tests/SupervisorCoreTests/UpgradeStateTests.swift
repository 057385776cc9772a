import Testing
import ControlProtocol
@testable import SupervisorCore

@Suite("Upgrade state: the pool handed from one image to the next", .timeLimit(.minutes(1)))
struct UpgradeStateTests {
    /// A pool of 3 at rest, whose slot 1 crashed twice (in backoff, then restarted) and has counters.
    static let notify = PoolPolicy.with { $0.readiness = .notify; $0.minReady = .zero }

    private func settledPool() -> PoolDriver {
        var driver = PoolDriver(desired: 3, policy: Self.notify)
        driver.start()
        driver.readyAll()
        // A slot scaled away and back: its retired generation must survive too.
        driver.send(.requested(.workers(.to(4)), by: .client(1)))
        driver.readyAll()
        driver.send(.requested(.workers(.to(3)), by: .client(1)))
        for pid in driver.pool.workers.values.filter({ $0.slot == 3 }).map(\.pid) { driver.send(.exited(pid: pid, status: .exited(0))) }
        // A failed reload: status shows it until the next roll, across an upgrade too.
        driver.send(.configurationRejected(reason: "supervisor.conf:2: workers: 'many' is not a count", for: .client(1)))
        driver.exit(slot: 1)
        driver.exit(slot: 1)
        driver.advance(by: .seconds(1))
        driver.readyAll()
        return driver
    }

    private func state(of pool: Pool, at now: Instant) -> UpgradeState {
        var state = UpgradeState(fromVersion: "0.1.0", handoverAt: now, pool: pool.snapshot,
                                 control: CarriedControl(fd: 5, path: "/run/hyperglass/control.sock"),
                                 workerSocketDirectory: "/run/hyperglass/workers.Ab3xYz", workerSocketsStarted: 5)
        state.pinned = 3
        state.startedAt = Instant(nanoseconds: 77)
        state.listeners = [CarriedListener(fd: 3, address: "127.0.0.1:8001", ownedPath: nil),
                           CarriedListener(fd: 4, address: "unix:/run/h g/http.sock", ownedPath: "/run/h g/http.sock")]
        state.workerSockets = pool.workers.values.sorted { $0.pid < $1.pid }.enumerated().map { index, worker in
            CarriedWorkerSockets(pid: worker.pid, startTime: 1000 + UInt64(index), notifyFD: Int32(10 + index),
                                 notifyName: "notify-\(worker.slot)-\(worker.generation)-\(index)", healthName: index == 0 ? "health-0-1-1" : nil)
        }
        state.waiterFD = 9
        state.clients = [CarriedClient(fd: 20, follower: true, unread: []),
                         CarriedClient(fd: 21, follower: false, unread: Array("{\"cmd\":\"ping\"}\n{\"cmd\"".utf8) + [0, 0xFF])]
        state.httpClients = [CarriedHTTPClient(fd: 22, acceptedAt: Instant(nanoseconds: now.nanoseconds - 300_000_000), unread: []),
                             CarriedHTTPClient(fd: 23, acceptedAt: now, unread: Array("GET /liv".utf8))]
        return state
    }

    @Test("every field survives encoding and decoding: slots, pids, generations, readiness, backoff, counters, fds")
    func roundTrip() throws {
        let driver = settledPool()
        var original = state(of: driver.pool, at: driver.now)
        original.pool.workers[0].status = "serving 3 = 100% done\nnext line ü"
        let decoded = try UpgradeState.decode(original.encoded())
        #expect(decoded == original)
        #expect(decoded.pool.slots[1].failures == 2)
        #expect(decoded.pool.slots[1].lastExit == .exited(1))
        #expect(decoded.pool.counters.spawns == 6)
        #expect(decoded.pool.retiredGenerations == [3: 1])
        #expect(decoded.pool.lastRoll?.succeeded == false && decoded.pool.lastRoll?.summary.contains("'many'") == true)
        #expect(decoded.pool.slots.map(\.askedGeneration) == driver.pool.slots.map(\.askedGeneration))
        #expect(decoded.pool.workers.allSatisfy { $0.readyAt != nil })
    }

    @Test("a newer build reads version 1, which had no counters: the pool is the same, the counters start at zero")
    func readsOlderFormat() throws {
        let driver = settledPool()
        let original = state(of: driver.pool, at: driver.now)
        let text = original.encoded(as: 1)
        #expect(text.hasPrefix("hyperglass-state 1\n"))
        let decoded = try UpgradeState.decode(text)
        #expect(decoded.formatVersion == 1)
        #expect(decoded.pool.slots == original.pool.slots)
        #expect(decoded.pool.workers == original.pool.workers)
        #expect(decoded.pool.counters == PoolCounters())
        #expect(decoded.carriedFDs == original.carriedFDs)
    }

    @Test("every stored field of the pool, its slots and workers is either carried or knowingly rebuilt (a new field fails here: add it to UpgradeState)")
    func everyFieldIsAccountedFor() {
        let driver = settledPool()
        func labels(_ value: Any) -> [String] { Mirror(reflecting: value).children.compactMap(\.label) }
        // Carried in the state, or rebuilt by Pool(restoring:) from the policy and the clock (schedules, caches).
        #expect(labels(driver.pool.slots[0]) == ["id", "pid", "generation", "askedGeneration", "release", "successor", "restartAt",
                                                  "failures", "restarts", "lastExit", "lastFailure", "waitingForResources"])
        #expect(labels(driver.pool.workers.values.first!) == ["pid", "slot", "generation", "release", "startedAt", "readyAt", "killAt", "killed",
                                                               "killReason", "killCause", "status", "health", "readiness"])
        let pool = labels(driver.pool)
        let known: Set<String> = ["policy", "slots", "workers", "phase", "scalingFrom", "autoscaler", "memoryCeiling", "loadSampleInFlight",
                                  "releases", "roll", "lastRoll", "rollSerial", "random", "nextWatchdogPing", "nextMemoryCheck",
                                  "lastReadyAt", "watchdogWithholding", "lastStatus", "counters", "timedRoll", "allReadyLogged",
                                  "retiredGenerations", "backlog", "upgradePreparation"]
        #expect(pool.count >= 20)
        #expect(Set(pool).subtracting(known).isEmpty, "new Pool fields: \(Set(pool).subtracting(known)); carry them in UpgradeState or rebuild them in Pool(restoring:)")
    }

    @Test("a state newer than this build reads is refused with what to do instead")
    func refusesNewerFormat() {
        let driver = settledPool()
        let text = state(of: driver.pool, at: driver.now).encoded()
            .replacingFirstLine(with: "hyperglass-state \(UpgradeState.version + 1)")
        #expect(throws: UpgradeStateError.newer(version: UpgradeState.version + 1)) { try UpgradeState.decode(text) }
        #expect(UpgradeState.canRead(UpgradeState.version + 1) != nil)
        #expect(UpgradeState.canRead(UpgradeState.version) == nil)
        #expect(UpgradeState.canRead(0) == .older(version: 0))
        #expect("\(UpgradeStateError.newer(version: 3))".contains("restart the service"))
    }

    @Test("garbage, a cut-short state and a bad number are refused, never half-read")
    func refusesGarbage() {
        #expect(throws: UpgradeStateError.notAState) { try UpgradeState.decode("\u{7F}ELF\u{02}\u{01}") }
        #expect(throws: UpgradeStateError.notAState) { try UpgradeState.decode("") }
        let driver = settledPool()
        let text = state(of: driver.pool, at: driver.now).encoded()
        let cut = String(text.prefix(text.count / 2))
        #expect(throws: UpgradeStateError.self) { try UpgradeState.decode(cut) }
        let bad = text.replacingOccurrences(of: "generation=1", with: "generation=one")
        #expect(throws: UpgradeStateError.self) { try UpgradeState.decode(bad) }
    }

    @Test("the restored pool keeps every worker and its slot, and a crash afterwards continues the backoff")
    func restoredPoolContinues() throws {
        let driver = settledPool()
        let decoded = try UpgradeState.decode(state(of: driver.pool, at: driver.now).encoded())
        let later = driver.now + .milliseconds(40)
        var pool = Pool(restoring: decoded.pool, policy: Self.notify, at: later)
        #expect(pool.upgradeRefusal == nil)
        #expect(pool.readyCount == 3)
        #expect(pool.slots.map(\.pid) == driver.pool.slots.map(\.pid))
        #expect(pool.slots.map(\.generation) == driver.pool.slots.map(\.generation))
        #expect(pool.release == driver.pool.release)
        #expect(pool.lastRoll == driver.pool.lastRoll && pool.lastRoll != nil)
        // Slot 1 failed twice: its third failure waits 2 s, as it would have in the old image.
        let pid = try #require(pool.slots[1].pid)
        let actions = pool.handle(.exited(pid: pid, status: .exited(1)), at: later)
        #expect(!actions.contains { if case .spawn = $0 { true } else { false } })
        #expect(pool.slots[1].restartAt == later + .seconds(2))
        #expect(pool.counters.failures.values.reduce(0, +) == 3)
    }

    @Test("an operator's pinned count holds across the upgrade: the new image's autoscaler stays paused")
    func pinnedCountHolds() throws {
        let driver = settledPool()
        let decoded = try UpgradeState.decode(state(of: driver.pool, at: driver.now).encoded())
        let scaler = Autoscaler(policy: AutoscalePolicy(floor: 1, ceiling: 8))
        let pinned = Pool(restoring: decoded.pool, policy: Self.notify, at: driver.now, autoscaler: scaler, pinned: decoded.pinned)
        #expect(decoded.pinned == 3)
        #expect(pinned.autoscaler?.pinned == 3)
        #expect(pinned.autoscaler?.nextSampleAt == nil)
        let free = Pool(restoring: decoded.pool, policy: Self.notify, at: driver.now, autoscaler: scaler)
        #expect(free.autoscaler?.pinned == nil)
    }

    @Test("a worker that vanished in the exec gap is restarted by the new image")
    func forgottenWorkerRestarts() throws {
        let driver = settledPool()
        let decoded = try UpgradeState.decode(state(of: driver.pool, at: driver.now).encoded())
        var pool = Pool(restoring: decoded.pool, policy: Self.notify, at: driver.now)
        let pid = try #require(pool.slots[2].pid)
        let reports = pool.forget(pid: pid, at: driver.now)
        #expect(reports.count == 1)
        #expect(pool.slots[2].failures == 1)
        let actions = pool.handle(.deadlineReached, at: driver.now)
        #expect(actions.contains { if case .spawn(2, _, _) = $0 { true } else { false } })
    }

    @Test("an upgrade request is admitted by the core only at rest; the shell's failure is answered as a refusal")
    func upgradeIntent() {
        let intent = Intent.upgrade(path: "/usr/bin/hyperglass-supervisor", wait: true)
        var settled = settledPool()
        let admitted = settled.send(.requested(intent, by: .client(7)))
        #expect(admitted.contains(.checkUpgrade(path: "/usr/bin/hyperglass-supervisor", for: .client(7))))
        let failed = settled.send(.upgradeFailed(reason: "cannot upgrade: nope", for: .client(7)))
        #expect(failed.contains(.reply(to: 7, .refused("cannot upgrade: nope"))))
        var rolling = settledPool()
        rolling.send(.requested(.restart(slots: nil), by: .client(3)))
        let refused = rolling.send(.requested(intent, by: .client(7)))
        #expect(!refused.contains { if case .execUpgrade = $0 { true } else { false } })
        #expect(refused.contains { if case .reply(7, .refused(let why)) = $0 { why.contains("restart is in progress") } else { false } })
        var duck = PoolDriver(policy: .with { $0.lameDuck = .seconds(5); $0.readiness = .notify })
        duck.start()
        duck.readyAll()
        duck.send(.signalReceived(.terminate))
        #expect(duck.send(.requested(intent, by: .client(7))).contains { if case .reply(7, .refused(let why)) = $0 { why.contains("lame duck") } else { false } })
    }

    @Test("no upgrade while starting, during a roll or a lame duck")
    func refusals() {
        var starting = PoolDriver(desired: 2, policy: Self.notify)
        starting.start()
        #expect(starting.pool.upgradeRefusal?.contains("starting") == true)
        var rolling = settledPool()
        rolling.send(.requested(.restart(slots: nil), by: .client(3)))
        #expect(rolling.pool.upgradeRefusal?.contains("restart is in progress") == true)
        var duck = PoolDriver(policy: .with { $0.lameDuck = .seconds(5); $0.readiness = .notify })
        duck.start()
        duck.readyAll()
        duck.send(.signalReceived(.terminate))
        #expect(duck.pool.upgradeRefusal?.contains("lame duck") == true)
        #expect(settledPool().pool.upgradeRefusal == nil)
    }
}

private extension String {
    func replacingFirstLine(with line: String) -> String {
        guard let newline = firstIndex(of: "\n") else { return line }
        return line + self[newline...]
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
