import Testing
@testable import SupervisorCore

@Suite("/proc/PID/status fields")
struct ProcStatusTests {
    @Test("the first supplementary group after the tab counts (control_group = adm as a user's lowest group)")
    func firstGroupAfterTheTab() {
        let status = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 1002 1003 \nNSpid:\t42\n"
        #expect(ProcStatus.supplementaryGroups(status) == [4, 24, 1002, 1003])
    }

    @Test("no supplementary groups, or no Groups line, is an empty list")
    func noGroups() {
        #expect(ProcStatus.supplementaryGroups("Name:\tx\nGroups:\t\n").isEmpty)
        #expect(ProcStatus.supplementaryGroups("Name:\tx\n").isEmpty)
    }
}
