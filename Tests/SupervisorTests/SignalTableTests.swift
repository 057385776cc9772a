import Testing
import SupervisorCore
@testable import Supervisor

/// The one signal table (SupervisorCore's `Signal`) and the list CSupervisorSignals blocks before main.
@Suite("Signal table", .timeLimit(.minutes(1)))
struct SignalTableTests {
    @Test("the signals blocked before main are exactly the ones the table says the loop handles")
    func earlyBlockedListMatchesTable() {
        #expect(EventLoop.earlyBlockedSignalsAgree)
    }

    @Test("signals an operator sends out of habit (logrotate's USR1, an upgrade's USR2, ALRM) are handled, not fatal")
    func habitualSignalsAreHandled() {
        for signal in [Signal.user1, .user2, .alarm] {
            #expect(EventLoop.handledSignals.contains(signal.rawValue), "\(signal.name)")
        }
        #expect(Signal.user1.meaning == .ignored(reason: "the supervisor writes no log file to reopen (its log goes to stderr and the journal)"))
        #expect(Signal.user2.meaning == .upgrade, "HAProxy's master re-executes itself in place on USR2; so does ours")
    }
}
