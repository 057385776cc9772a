import Foundation
import Glibc
import Testing

/// Local users and workers against the supervisor's processes and sockets (issue 11), through Hostile/hostile.py.
extension Hostile {
@Suite(.timeLimit(.minutes(5)))
struct LocalUsersAndWorkers {
    @Test("no kill() names a worker's pid or process group once wait4 reaped it", .enabled(if: access("/usr/bin/strace", X_OK) == 0, "needs strace"))
    func noSignalAfterReap() { runHostile("signal_after_reap") }

    @Test("a control-socket directory owned by another user is refused with a message")
    func foreignRuntimeDirectoryIsRefused() { runHostile("foreign_runtime_dir") }

    @Test("a control-socket directory writable by others is refused with a message")
    func worldWritableRuntimeDirectoryIsRefused() { runHostile("world_writable_runtime_dir") }

    @Test("a socket swapped for a symlink right after bind: the link's target keeps its mode and group", .enabled(if: access("/usr/bin/strace", X_OK) == 0, "needs strace"))
    func noPathFollowingChmod() { runHostile("symlink_swap") }

    @Test("another user can neither reach the workers' notify and health sockets nor pre-bind the next ones")
    func workerSocketsAreUnnameable() { runHostile("squat_worker_sockets") }

    @Test("a root worker claiming its sibling's pid in SCM_CREDENTIALS does not make the supervisor act on the sibling")
    func notifyImpersonationIsIgnored() { runHostile("impostor_worker") }

    @Test("a slot removed and added again while its old worker drains starts at once (no 'Address already in use')")
    func reAddedSlotGetsFreshSockets() { runHostile("rescale_while_draining") }
}
}
