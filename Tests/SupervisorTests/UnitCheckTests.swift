import Testing
@testable import Supervisor

@Suite("UnitCheck.parseTimespan", .timeLimit(.minutes(1)))
struct UnitCheckTests {
    @Test("time spans as systemctl show prints them")
    func spans() {
        #expect(UnitCheck.parseTimespan("45s") == .seconds(45))
        #expect(UnitCheck.parseTimespan("1min 30s") == .seconds(90))
        #expect(UnitCheck.parseTimespan("500ms") == .milliseconds(500))
        #expect(UnitCheck.parseTimespan("1.5s") == .milliseconds(1500))
        #expect(UnitCheck.parseTimespan("2h 5min") == .seconds(7500))
        #expect(UnitCheck.parseTimespan("1w 1d") == .seconds(8 * 86400))
        #expect(UnitCheck.parseTimespan("250us") == .microseconds(250))
    }

    @Test("infinity is longer than any graceful timeout")
    func infinity() {
        #expect(UnitCheck.parseTimespan("infinity")! > .seconds(86400 * 365 * 100))
    }

    @Test("anything else is not understood, so no warning is guessed from it")
    func garbage() {
        #expect(UnitCheck.parseTimespan("soon") == nil)
        #expect(UnitCheck.parseTimespan("45") == nil)
        #expect(UnitCheck.parseTimespan("45 parsecs") == nil)
        #expect(UnitCheck.parseTimespan("s") == nil)
    }
}
