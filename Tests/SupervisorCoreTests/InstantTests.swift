import Testing
@testable import SupervisorCore

@Suite("Instant and Duration helpers", .timeLimit(.minutes(1)))
struct InstantTests {
    @Test("adding and subtracting durations moves an instant both ways")
    func arithmetic() {
        let t = Instant(nanoseconds: 10_000_000_000)
        #expect(t + .seconds(2) == Instant(nanoseconds: 12_000_000_000))
        #expect(t + .seconds(-2) == Instant(nanoseconds: 8_000_000_000))
        #expect((t + .milliseconds(1500)) - t == .milliseconds(1500))
        #expect(t - (t + .seconds(3)) == .seconds(-3))
    }

    @Test("durations are spoken the way logs and STATUS show them", arguments: [
        (Duration.milliseconds(250), "250ms"),
        (Duration.seconds(4), "4s"),
        (Duration.milliseconds(1500), "1.5s"),
        (Duration.seconds(120), "2m"),
        (Duration.seconds(90), "90s"),
        (Duration.zero, "0ms"),
    ])
    func spoken(duration: Duration, text: String) {
        #expect(duration.spoken == text)
    }

    @Test("countdowns round up to whole seconds")
    func roundedUp() {
        #expect(Duration.milliseconds(3001).roundedUpSeconds == 4)
        #expect(Duration.seconds(4).roundedUpSeconds == 4)
        #expect(Duration.zero.roundedUpSeconds == 0)
    }
}
