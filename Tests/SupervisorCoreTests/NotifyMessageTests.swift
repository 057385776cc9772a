import Testing
@testable import SupervisorCore

@Suite("sd_notify messages", .timeLimit(.minutes(1)))
struct NotifyMessageTests {
    @Test("READY=1 with a STATUS is parsed")
    func readyAndStatus() {
        let message = NotifyMessage(parsing: "READY=1\nSTATUS=listening on :8001")
        #expect(message == NotifyMessage(ready: true, status: "listening on :8001"))
    }

    @Test("only the value 1 turns a flag on", arguments: ["READY=0", "READY=", "READY=true", "READY=11", "ready=1"])
    func onlyOne(text: String) {
        #expect(!NotifyMessage(parsing: text).ready)
    }

    @Test("STOPPING=1 and WATCHDOG=1 are recognised")
    func stoppingAndWatchdog() {
        let message = NotifyMessage(parsing: "WATCHDOG=1\nSTOPPING=1")
        #expect(message.stopping)
        #expect(message.watchdog)
        #expect(!message.ready)
        #expect(message.status == nil)
    }

    @Test("unknown assignments and lines without '=' are ignored, as systemd does")
    func unknownIgnored() {
        let message = NotifyMessage(parsing: "MAINPID=42\ngarbage\n\nERRNO=2\nREADY=1")
        #expect(message == NotifyMessage(ready: true))
    }

    @Test("the last STATUS wins, a value may contain '=', and it is cut at 200 characters")
    func statusRules() {
        #expect(NotifyMessage(parsing: "STATUS=one\nSTATUS=two").status == "two")
        #expect(NotifyMessage(parsing: "STATUS=a=b").status == "a=b")
        #expect(NotifyMessage(parsing: "STATUS=").status == "")
        let long = String(repeating: "x", count: 500)
        #expect(NotifyMessage(parsing: "STATUS=\(long)").status?.count == 200)
    }

    @Test("a flag once set is not cleared by a later 0 in the same datagram")
    func flagsAreSticky() {
        #expect(NotifyMessage(parsing: "READY=1\nREADY=0").ready)
    }

    @Test("an empty datagram means nothing")
    func empty() {
        #expect(NotifyMessage(parsing: "") == NotifyMessage())
    }
}
