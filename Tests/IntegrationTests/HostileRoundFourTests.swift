import Testing

/// Round four: the upgrade preflight beside the loop, SIGUSR2's upgrade and the shared worker cgroups, attacked (Hostile/round_four.py).
extension Hostile {
@Suite(.timeLimit(.minutes(5)))
struct RoundFour {
    @Test("an upgrade check that leaves a setsid child holding its output, a double-forked daemon, a setsid child with a child of its own, or a setsid child and hangs: refused (the first at once, by what it wrote), nothing it started lives on; a live worker's helper lives")
    func upgradeCheckLeavesNoDaemon() { runHostile("upgrade_check_leaves_no_daemon") }

    @Test("a supervisor in the root cgroup keeps its worker cgroups across an upgrade in place, and removes its base at exit")
    func upgradeKeepsWorkerCgroupsInRootCgroup() { runHostile("upgrade_keeps_worker_cgroups_in_root_cgroup") }

    @Test("a start in another pid namespace leaves alone a live supervisor whose base has the earlier build's name hyperglass-PID")
    func legacyCgroupOfAnotherPidNamespace() { runHostile("legacy_cgroup_of_another_pid_namespace") }

    @Test("a start whose pid a SIGKILLed supervisor had finds that one's base under its own name and ends its stray, rather than sharing its cgroup with it")
    func leftoverCgroupWithOurOwnPid() { runHostile("leftover_cgroup_with_our_own_pid") }

    @Test("a second supervisor in one pid namespace whose /proc is the parent's (unshare --pid without --mount-proc) leaves the first one's worker alone")
    func secondStartUnderUnshareWithoutMountProc() { runHostile("second_start_under_unshare_without_mount_proc") }

    @Test("a /livez probe connected to metrics_bind before an upgrade in place, its request sent after (or half before), is answered by the new program")
    func probeConnectedAcrossAnUpgrade() { runHostile("probe_connected_across_an_upgrade") }

    @Test("an upgrade check that writes without end is refused at once by what it wrote, not read for 5 s at the cost of a CPU")
    func upgradeCheckThatWritesForever() { runHostile("upgrade_check_that_writes_forever") }
}
}
