import Foundation
import Glibc
import Testing

/// Local users and workers against the supervisor's processes and sockets (issue 11), through Hostile/hostile.py.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HostileSupervisorTests {
    @Test("no kill() names a worker's pid or process group once wait4 reaped it", .enabled(if: access("/usr/bin/strace", X_OK) == 0, "needs strace"))
    func noSignalAfterReap() { runHostile("signal_after_reap") }
}
