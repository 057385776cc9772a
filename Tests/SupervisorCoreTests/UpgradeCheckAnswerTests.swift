import Testing
@testable import SupervisorCore

@Suite("The upgrade preflight's yes: exactly one line, last, for the offered state version")
struct UpgradeCheckAnswerTests {
    @Test("the new binary's own yes is read back, after any warnings it printed first")
    func ownYesIsRead() {
        let yes = UpgradeCheckAnswer.yes(version: "0.2.0+deb12u1", stateVersion: 2)
        #expect(UpgradeCheckAnswer.version(in: yes + "\n", offered: 2) == "0.2.0+deb12u1")
        #expect(UpgradeCheckAnswer.version(in: "warning: max_workers capped at 40\n" + yes + "\n", offered: 2) == "0.2.0+deb12u1")
    }

    @Test("a yes for another state version is no yes")
    func otherStateVersion() {
        #expect(UpgradeCheckAnswer.version(in: UpgradeCheckAnswer.yes(version: "0.2.0", stateVersion: 1), offered: 2) == nil)
    }

    @Test("output that merely says 'can take over' somewhere, or whose version is not a version, is refused",
          arguments: [
              "hyperglass \u{1B}[2J\r\nevil can take over x\nAAAA\n",
              "hyperglass 9 can take over\n",
              "hyperglass 0.2.0 can take over state version 2\nand then something else\n",
              "hyperglass 1\u{1B}]0;pwn\u{07} can take over state version 2\n",
              "hyperglass  can take over state version 2\n",
              "hyperglass 0.2.0 can take over state version 2 \n",
              "xhyperglass 0.2.0 can take over state version 2\n",
              "hyperglass " + String(repeating: "1", count: 65) + " can take over state version 2\n",
              "",
          ])
    func garbageIsRefused(output: String) {
        #expect(UpgradeCheckAnswer.version(in: output, offered: 2) == nil)
    }

    @Test("what a reply quotes of the output has no control characters and is bounded")
    func shownIsSafe() {
        let shown = UpgradeCheckAnswer.shown("a\u{1B}[2J\r\u{07}b" + String(repeating: "x", count: 1000))
        #expect(shown.hasPrefix("a?[2J??b"))
        #expect(shown.count == 400)
        #expect(!shown.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
    }
}
