import Testing
@testable import SupervisorCore

@Suite("Backoff", .timeLimit(.minutes(1)))
struct BackoffTests {
    let policy = BackoffPolicy()

    @Test("the first restart is immediate, then 1s, 2s, 4s ... doubling up to the 30s cap")
    func sequence() {
        let delays = (1...9).map { policy.baseDelay(afterFailures: $0) }
        #expect(delays == [.zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16),
                           .seconds(30), .seconds(30), .seconds(30)])
    }

    @Test("the delay stays at the cap however many failures there were")
    func capHolds() {
        #expect(policy.baseDelay(afterFailures: 100) == .seconds(30))
        #expect(policy.baseDelay(afterFailures: 10_000) == .seconds(30))
    }

    @Test("zero or negative failure counts mean no wait")
    func nonPositiveFailures() {
        #expect(policy.baseDelay(afterFailures: 0) == .zero)
        #expect(policy.baseDelay(afterFailures: -3) == .zero)
    }

    @Test("a custom initial and maximum shape the sequence", arguments: [
        (Duration.milliseconds(500), Duration.seconds(3), [Duration.zero, .milliseconds(500), .seconds(1), .seconds(2), .seconds(3), .seconds(3)]),
        (Duration.seconds(5), Duration.seconds(5), [Duration.zero, .seconds(5), .seconds(5), .seconds(5), .seconds(5), .seconds(5)]),
    ])
    func customPolicy(initial: Duration, maximum: Duration, expected: [Duration]) {
        let custom = BackoffPolicy(initial: initial, maximum: maximum)
        #expect((1...6).map { custom.baseDelay(afterFailures: $0) } == expected)
    }

    @Test("jitter stays within ±10% of the base delay and never exceeds the cap")
    func jitterBounds() {
        var random = SplitMix64(seed: 42)
        for failures in 2...12 {
            let base = policy.baseDelay(afterFailures: failures)
            for _ in 0..<200 {
                let delay = policy.delay(afterFailures: failures, unit: random.nextUnit())
                #expect(delay >= base.scaled(by: 0.9))
                #expect(delay <= base.scaled(by: 1.1))
                #expect(delay <= policy.maximum)
            }
        }
    }

    @Test("jitter spans both sides of the base delay", arguments: [0.0, 0.5, 0.999_999])
    func jitterEnds(unit: Double) {
        let delay = policy.delay(afterFailures: 3, unit: unit)  // base 2s
        switch unit {
        case 0.0: #expect(delay == .milliseconds(1800))
        case 0.5: #expect(delay == .seconds(2))
        default: #expect(delay > .milliseconds(2199) && delay <= .milliseconds(2200))
        }
    }

    @Test("the immediate first restart is never delayed by jitter")
    func noJitterOnFirstRestart() {
        #expect(policy.delay(afterFailures: 1, unit: 0.0) == .zero)
        #expect(policy.delay(afterFailures: 1, unit: 0.99) == .zero)
    }

    @Test("a seeded generator repeats its sequence and stays in [0, 1)")
    func splitMixIsDeterministic() {
        var a = SplitMix64(seed: 7)
        var b = SplitMix64(seed: 7)
        var c = SplitMix64(seed: 8)
        let xs = (0..<100).map { _ in a.nextUnit() }
        let ys = (0..<100).map { _ in b.nextUnit() }
        let zs = (0..<100).map { _ in c.nextUnit() }
        #expect(xs == ys)
        #expect(xs != zs)
        #expect(xs.allSatisfy { $0 >= 0 && $0 < 1 })
    }
}
