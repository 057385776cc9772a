import ControlProtocol
import Testing
@testable import SupervisorCore

/// Every operator request in every phase, decided by the core alone (`Pool.refusal(of:at:)`): the control
/// socket, the signals that stand for requests and the autoscaler's samples meet one rule.
@Suite("Pool: operator requests in every phase", .timeLimit(.minutes(1)))
struct PoolIntentTests {
    enum TestPhase: String, CaseIterable { case starting, running, rolling, lameDuck, draining }

    /// How a request arrives.
    enum Input: String, CaseIterable {
        case workersTo, workersUp, workersDown, workersAuto, reload, restartAll, restartOne
        case sighup, sigttin, sigttou, loadSample
    }

    static let policy = PoolPolicy.with {
        $0.readiness = .notify
        $0.maxWorkers = 8
        $0.lameDuck = .seconds(10)
    }

    /// A pool of two workers, autoscaling 1-8 (pinned at 2 by nothing), brought to `phase`.
    static func driver(in phase: TestPhase) -> PoolDriver {
        var driver = PoolDriver(desired: 2, policy: policy, autoscaler: Autoscaler(policy: AutoscalePolicy(floor: 1, ceiling: 8)))
        driver.start()
        if phase != .starting { driver.readyAll() }
        switch phase {
        case .starting, .running: break
        case .rolling: driver.send(.restartRequested(slots: [0, 1]))
        case .lameDuck:
            driver.send(.signalReceived(.terminate))
            driver.advance(by: .milliseconds(3_500))
        case .draining:
            driver.send(.signalReceived(.terminate))
            driver.send(.signalReceived(.terminate))
        }
        return driver
    }

    static func event(_ input: Input) -> Event {
        switch input {
        case .workersTo: .requested(.workers(.to(4)), by: .client(7))
        case .workersUp: .requested(.workers(.by(1)), by: .client(7))
        case .workersDown: .requested(.workers(.by(-1)), by: .client(7))
        case .workersAuto: .requested(.autoscale, by: .client(7))
        case .reload: .requested(.reload, by: .client(7))
        case .restartAll: .requested(.restart(slots: nil), by: .client(7))
        case .restartOne: .requested(.restart(slots: [1]), by: .client(7))
        case .sighup: .signalReceived(.hangup)
        case .sigttin: .signalReceived(.ttin)
        case .sigttou: .signalReceived(.ttou)
        case .loadSample: .loadSampled(LoadSample(queued: 3))
        }
    }

    /// The refusal each phase gives, nil where the request is admitted.
    static func expectedRefusal(_ input: Input, in phase: TestPhase) -> String? {
        switch phase {
        case .starting, .running: return nil
        case .rolling:
            switch input {
            case .reload, .sighup: return "cannot reload now: a restart is in progress (0/2 workers replaced); try again when it has finished"
            case .restartAll, .restartOne: return "cannot restart now: a restart is in progress (0/2 workers replaced); try again when it has finished"
            default: return nil
            }
        case .lameDuck: return "the supervisor is stopping (lame duck: draining in 7 s)"
        case .draining: return "the supervisor is stopping"
        }
    }

    @Test("each request is admitted or refused with the reason, by phase", arguments: TestPhase.allCases, Input.allCases)
    func admission(phase: TestPhase, input: Input) {
        var driver = Self.driver(in: phase)
        let desiredBefore = driver.pool.desired
        let phaseBefore = driver.pool.phase
        let rollBefore = driver.pool.roll?.id
        let actions = driver.send(Self.event(input))
        let refusal = Self.expectedRefusal(input, in: phase)
        switch input {
        case .sighup, .sigttin, .sigttou:
            let name = input == .sighup ? "SIGHUP" : input == .sigttin ? "SIGTTIN" : "SIGTTOU"
            let complaints = actions.logs(atLeast: .warning).filter { $0.hasPrefix(name + ":") }
            if let refusal {
                #expect(complaints.count == 1 && complaints[0].hasSuffix(refusal), "\(complaints)")
            } else {
                #expect(complaints.isEmpty, "\(complaints)")
            }
            #expect(actions.replies.isEmpty, "a signal has nobody to reply to")
        case .loadSample:
            // Held, not refused: the autoscaler says nothing and the count stays.
            #expect(actions.replies.isEmpty)
        default:
            #expect(actions.replies.count == (input == .reload && refusal == nil ? 0 : 1), "\(actions.replies)")
            if let refusal {
                guard case .refused(let reason)? = actions.replies.first else {
                    Issue.record("admitted: \(actions.replies)")
                    return
                }
                #expect(reason.hasSuffix(refusal), "\(reason)")
            } else if case .refused(let reason)? = actions.replies.first {
                Issue.record("refused: \(reason)")
            }
        }
        if refusal != nil || (input == .loadSample && phase != .starting && phase != .running) {
            #expect(driver.pool.desired == desiredBefore, "nothing changes")
            #expect(driver.pool.phase == phaseBefore)
            #expect(driver.pool.roll?.id == rollBefore)
            #expect(actions.spawnedSlots.isEmpty)
            #expect(!actions.contains { if case .readConfiguration = $0 { true } else { false } })
        } else {
            switch input {
            case .workersTo: #expect(driver.pool.desired == 4)
            case .workersUp, .sigttin: #expect(driver.pool.desired == desiredBefore + 1)
            case .workersDown, .sigttou: #expect(driver.pool.desired == desiredBefore - 1)
            case .loadSample: #expect(driver.pool.desired == desiredBefore + 3, "three queued connections, three more workers")
            case .reload, .sighup: #expect(actions.contains(.readConfiguration(for: input == .sighup ? .signal(.hangup) : .client(7))))
            case .restartAll, .restartOne: #expect(driver.pool.roll?.kind == .restart)
            case .workersAuto: #expect(driver.pool.autoscaler?.pinned == nil)
            }
        }
    }

    @Test("an operator's count pins autoscaling until workers auto; a sample then moves the count again")
    func operatorCountPins() {
        var driver = Self.driver(in: .running)
        let pinned = driver.send(.requested(.workers(.to(3)), by: .client(7)))
        #expect(pinned.replies == [.workers(previous: 2, desired: 3)])
        #expect(driver.pool.autoscaler?.pinned == 3)
        #expect(pinned.contains(.watchForLoad))
        #expect(driver.send(.loadSampled(LoadSample(queued: 5))).spawnedSlots.isEmpty, "pinned: samples change nothing")
        let resumed = driver.send(.requested(.autoscale, by: .client(7)))
        #expect(resumed.replies.count == 1)
        #expect(resumed.contains { if case .sampleLoad = $0 { true } else { false } }, "resuming samples at once")
        #expect(driver.send(.loadSampled(LoadSample(queued: 2))).spawnedSlots == [3, 4])
    }

    @Test("workers auto with autoscaling off is refused and says how to turn it on")
    func autoWithoutAutoscaling() {
        var driver = PoolDriver(desired: 2, policy: Self.policy)
        driver.start()
        #expect(driver.send(.requested(.autoscale, by: .client(3))).replies
                == [.refused("autoscaling is off; set workers = auto:MIN-MAX in the configuration (e.g. auto:1-16) to turn it on")])
    }

    @Test("a reload gets its roll id and release number from the core, and the reply names that roll")
    func reloadNumbersItsRoll() {
        var driver = Self.driver(in: .running)
        #expect(driver.send(.requested(.reload, by: .client(7))) == [.readConfiguration(for: .client(7))])
        let read = driver.send(.configurationRead(ReloadPlan(settings: Self.policy.settings), autoscaler: nil, memoryCeiling: nil, for: .client(7)))
        #expect(read.replies == [.rollStarted(id: 1, summary: "reload started: 2 workers to replace", note: nil)])
        #expect(driver.pool.roll?.release == 2)
        #expect(driver.pool.autoscaler == nil, "the new configuration has a fixed count")
    }

    @Test("restart of a worker that does not exist is refused with the range")
    func restartUnknownWorker() {
        var driver = Self.driver(in: .running)
        #expect(driver.send(.requested(.restart(slots: [5]), by: .client(7))).replies == [.refused("there is no worker 5: the workers are 0 to 1")])
    }
}
