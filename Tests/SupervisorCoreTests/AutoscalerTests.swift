import Testing
@testable import SupervisorCore

/// The autoscaling policy under a fake clock: samples in, worker counts out, no processes.
@Suite("Autoscaler")
struct AutoscalerTests {
    static let t0 = Instant(nanoseconds: 1_000_000_000_000)

    /// Feeds samples one `sampleInterval` apart and applies each decision, as the shell does.
    struct Harness {
        var scaler: Autoscaler
        var now = AutoscalerTests.t0
        var count: Int
        var changes: [(at: Duration, to: Int)] = []

        init(floor: Int = 1, ceiling: Int = 16, change: (inout AutoscalePolicy) -> Void = { _ in }) {
            var policy = AutoscalePolicy(floor: floor, ceiling: ceiling)
            policy.cpus = 2
            change(&policy)
            scaler = Autoscaler(policy: policy)
            count = floor
        }

        /// One sample `after` the previous one; returns the new count if it changed.
        @discardableResult
        mutating func sample(queued: Int = 0, cpu: Double? = 0, starting: Int = 0, hold: String? = nil,
                             memoryCeiling: Int? = nil, after: Duration = .seconds(1)) -> Int? {
            now = now + after
            let next = scaler.sampled(LoadSample(queued: queued, cpu: cpu, starting: starting), current: count, hold: hold,
                                      memoryCeiling: memoryCeiling, at: now)
            if let next {
                count = next
                changes.append((now - AutoscalerTests.t0, next))
            }
            return next
        }

        /// Quiet samples every second for `duration`.
        mutating func quiet(for duration: Duration) {
            for _ in 0..<Int(duration.seconds) { sample() }
        }
    }

    @Test("a burst grows the pool at once by one worker per queued connection, up to the ceiling")
    func burstGrowsByQueue() {
        var h = Harness(floor: 2, ceiling: 16)
        let sampleNow = h.scaler.loadArrived(at: h.now)
        #expect(sampleNow)
        #expect(h.sample(queued: 5) == 7)
        #expect(h.scaler.lastChange?.reason == "5 connections waited in the accept queue")
        h.sample(after: .seconds(2))
        #expect(h.sample(queued: 40, after: .seconds(2)) == 16)
        #expect(h.sample(queued: 40, after: .seconds(2)) == nil, "never above the ceiling")
    }

    @Test("growth waits for the cooldown, and workers still starting are not asked for twice")
    func upCooldownAndStarting() {
        var h = Harness(floor: 1, ceiling: 16)
        _ = h.scaler.loadArrived(at: h.now)
        #expect(h.sample(queued: 3) == 4)
        #expect(h.sample(queued: 3, after: .milliseconds(500)) == nil, "0.5 s after a scale-up: within the 1 s cooldown")
        #expect(h.sample(queued: 3, starting: 3) == nil, "the 3 starting workers will take the 3 queued connections")
        #expect(h.sample(queued: 5, starting: 3) == 6)
    }

    @Test("busy CPU grows the pool toward 60 % per worker, but CPU-bound workers never outgrow the CPUs")
    func cpuSignal() {
        var h = Harness(floor: 1, ceiling: 16) { $0.cpus = 4 }
        _ = h.scaler.loadArrived(at: h.now)
        #expect(h.sample(cpu: 0.9) == 2, "1 × 0.9 / 0.6 → 2 workers")
        #expect(h.scaler.lastChange?.reason == "workers used 90% CPU")
        #expect(h.sample(cpu: 0.95) == 4)
        // 4 workers at 95 % already use the 4 CPUs: more workers would only wait for a CPU.
        #expect(h.sample(cpu: 0.95) == nil)
    }

    @Test("load between quiet and busy changes nothing: no growth, no shrink (hysteresis)")
    func hysteresisBand() {
        var h = Harness(floor: 1, ceiling: 16)
        _ = h.scaler.loadArrived(at: h.now)
        h.sample(queued: 7)
        for _ in 0..<120 { #expect(h.sample(cpu: 0.5) == nil) }
        #expect(h.count == 8)
        #expect(h.scaler.mode == .sampling)
    }

    @Test("a quiet pool waits 30 s, then halves its surplus every 10 s down to the floor, and stops sampling there")
    func returnsToFloor() {
        var h = Harness(floor: 1, ceiling: 16)
        _ = h.scaler.loadArrived(at: h.now)
        h.sample(queued: 15)
        #expect(h.count == 16)
        h.quiet(for: .seconds(120))
        #expect(h.changes.map(\.to) == [16, 8, 4, 2, 1])
        #expect(h.changes.map(\.at) == [.seconds(1), .seconds(31), .seconds(41), .seconds(51), .seconds(61)])
        #expect(h.scaler.lastChange?.reason == "quiet for 30s: nothing queued, CPU below 30%")
        #expect(h.scaler.mode == .waitingForLoad)
        #expect(h.scaler.nextSampleAt == nil, "idle at the floor costs no wake-ups")
    }

    @Test("at the floor with no load there is no sample until a connection arrives")
    func idleAtFloorSleeps() {
        var h = Harness(floor: 2, ceiling: 8)
        #expect(h.scaler.nextSampleAt == nil)
        _ = h.scaler.loadArrived(at: h.now)
        h.sample()
        #expect(h.scaler.mode == .waitingForLoad)
        #expect(h.scaler.nextSampleAt == nil)
        _ = h.scaler.loadArrived(at: h.now)
        h.sample(cpu: 0.5)
        #expect(h.scaler.nextSampleAt == h.now + .seconds(1), "a loaded pool at its floor keeps sampling")
    }

    @Test("no scaling while a roll runs; load seen during the roll still postpones the shrink")
    func holdDuringRoll() {
        var h = Harness(floor: 1, ceiling: 16)
        _ = h.scaler.loadArrived(at: h.now)
        h.sample(queued: 3)
        #expect(h.sample(queued: 9, hold: "a reload is running", after: .seconds(5)) == nil)
        for _ in 0..<40 { #expect(h.sample(hold: "a reload is running") == nil) }
        h.sample(queued: 2, hold: "a reload is running")
        #expect(h.sample(queued: 4) == 8, "after the roll it grows at once")
        h.quiet(for: .seconds(29))
        #expect(h.count == 8)
        #expect(h.sample() == 4, "half the surplus of 7, rounded up")
    }

    @Test("a load that comes back after every shrink makes the shrinks ever rarer instead of flapping")
    func flappingLoadIsDamped() {
        var h = Harness(floor: 1, ceiling: 16)
        _ = h.scaler.loadArrived(at: h.now)
        h.sample(queued: 3)
        var shrinks: [Duration] = []
        // A client that comes back 5 s after each shrink, for 10 minutes.
        var comeBackAt: Instant? = nil
        for _ in 0..<600 {
            let busy = comeBackAt.map { h.now + .seconds(1) >= $0 } ?? false
            let before = h.count
            h.sample(queued: busy ? 1 : 0)
            if busy { comeBackAt = nil }
            if h.count < before {
                shrinks.append(h.now - AutoscalerTests.t0)
                comeBackAt = h.now + .seconds(5)
            }
        }
        // 30 s, then 60 s, 120 s, 240 s of quiet before each shrink: 4 shrinks in 10 minutes, not 20.
        #expect(shrinks.count <= 4, "\(shrinks)")
        #expect(h.scaler.downDelayFactor == 8)
        #expect(zip(shrinks, shrinks.dropFirst()).allSatisfy { $1 - $0 >= .seconds(60) }, "\(shrinks)")
    }

    @Test("after a shrink that held for a whole delay, the next shrink waits the plain delay again")
    func heldShrinkResetsTheDelay() {
        var h = Harness(floor: 1, ceiling: 16)
        _ = h.scaler.loadArrived(at: h.now)
        h.sample(queued: 7)
        h.quiet(for: .seconds(30))
        #expect(h.count == 4)
        h.sample(queued: 1, after: .seconds(3))
        #expect(h.scaler.downDelayFactor == 2, "the load came back 3 s after the shrink")
        h.quiet(for: .seconds(60))
        #expect(h.count == 3, "60 s of quiet, then half the surplus")
        h.quiet(for: .seconds(120))
        #expect(h.count == 1)
        #expect(h.scaler.downDelayFactor == 1, "that shrink held for its whole (doubled) delay")
        h.sample(queued: 2)
        let grownAt = h.now
        h.quiet(for: .seconds(30))
        #expect(h.changes.last?.at == grownAt + .seconds(30) - AutoscalerTests.t0, "back to a 30 s delay")
    }

    @Test("random samples never take the count below the floor or above the ceiling")
    func boundsUnderRandomLoad() {
        var random = SplitMix64(seed: 14)
        for _ in 0..<200 {
            let floor = Int(random.below(4)) + 1
            let ceiling = floor + Int(random.below(12))
            var h = Harness(floor: floor, ceiling: ceiling)
            _ = h.scaler.loadArrived(at: h.now)
            let memory: Int? = random.below(3) == 0 ? Int(random.below(8)) : nil
            for _ in 0..<300 {
                let queued = random.below(3) == 0 ? Int(random.below(50)) : 0
                let cpu = Double(random.below(100)) / 100
                let hold: String? = random.below(10) == 0 ? "roll" : nil
                h.sample(queued: queued, cpu: cpu, hold: hold, memoryCeiling: memory, after: .milliseconds(Int64(random.below(5000))))
                #expect(h.count >= floor && h.count <= h.scaler.ceiling(memoryCeiling: memory))
            }
        }
    }

    @Test("the memory ceiling (max_memory × workers) caps growth, but never below the floor")
    func memoryCeiling() {
        var h = Harness(floor: 2, ceiling: 16)
        _ = h.scaler.loadArrived(at: h.now)
        #expect(h.sample(queued: 30, memoryCeiling: 6) == 6)
        #expect(h.scaler.summary(current: 6, memoryCeiling: 6).hasPrefix("autoscaling 2-6 (memory)"))
        #expect(h.sample(queued: 30, memoryCeiling: 4, after: .seconds(3)) == 4, "a lower memory ceiling brings the count down")
        #expect(h.scaler.ceiling(memoryCeiling: 1) == 2)
    }

    @Test("workers N pins the count and pauses sampling; workers auto resumes and brings the count into range")
    func pinning() {
        var h = Harness(floor: 2, ceiling: 8)
        _ = h.scaler.loadArrived(at: h.now)
        h.scaler.pin(12, current: 2, at: h.now)
        h.count = 12
        #expect(h.scaler.nextSampleAt == nil)
        let sampleNow = h.scaler.loadArrived(at: h.now)
        #expect(!sampleNow, "no sampling while pinned")
        #expect(h.sample(queued: 50) == nil)
        #expect(h.scaler.summary(current: 12) == "autoscaling 2-8 paused: pinned at 12 (hyperglassctl workers auto resumes)")
        let resumed = h.scaler.resume(current: 12, at: h.now)
        #expect(resumed == 8)
        #expect(h.scaler.lastChange?.reason == "autoscaling resumed above the ceiling of 8")
        h.count = 8
        #expect(h.scaler.mode == .sampling)
        #expect(h.scaler.nextSampleAt == nil, "the first sample is due at once")
        h.quiet(for: .seconds(29))
        #expect(h.count == 8, "resuming counts as load: 30 s of quiet before the first shrink")
        #expect(h.sample() == 5)
        #expect(h.scaler.summary(current: 5) == "autoscaling 2-8; last change 8 → 5: quiet for 30s: nothing queued, CPU below 30%")
    }
}

extension SplitMix64 {
    /// 0..<n.
    mutating func below(_ n: Int) -> Int { min(n - 1, Int(nextUnit() * Double(n))) }
}
