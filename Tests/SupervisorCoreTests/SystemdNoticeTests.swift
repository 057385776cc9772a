import Testing
@testable import SupervisorCore

/// The one place sd_notify text is written: what systemd reads for each notice.
@Suite("systemd notices", .timeLimit(.minutes(1)))
struct SystemdNoticeTests {
    @Test("each notice is the assignment sd_notify(3) names, times in microseconds; a list is one datagram in order")
    func assignments() {
        #expect(SystemdNotice.datagram([.ready, .status("4/4 workers ready")]) == "READY=1\nSTATUS=4/4 workers ready")
        #expect(SystemdNotice.reloading(at: Instant(nanoseconds: 12_345_678_999)).assignment == "RELOADING=1\nMONOTONIC_USEC=12345678")
        #expect(SystemdNotice.datagram([.stopping, .extendTimeout(.seconds(35))]) == "STOPPING=1\nEXTEND_TIMEOUT_USEC=35000000")
        #expect(SystemdNotice.watchdog.assignment == "WATCHDOG=1")
        let chatter: [SystemdNotice] = [.status("x"), .watchdog]
        let changes: [SystemdNotice] = [.ready, .stopping, .extendTimeout(.zero), .reloading(at: Instant(nanoseconds: 0))]
        #expect(chatter.allSatisfy { $0.isChatter })
        #expect(changes.allSatisfy { !$0.isChatter })
    }
}
