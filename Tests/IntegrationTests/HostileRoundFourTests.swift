import Testing

/// Round four: the upgrade preflight beside the loop, SIGUSR2's upgrade and the shared worker cgroups, attacked (Hostile/round_four.py).
extension Hostile {
@Suite(.timeLimit(.minutes(5)))
struct RoundFour {
    @Test("an upgrade check that leaves a setsid child holding its output, a double-forked daemon, or a setsid child and hangs: refused (the first at once, by what it wrote), nothing it started lives on; a live worker's helper lives")
    func upgradeCheckLeavesNoDaemon() { runHostile("upgrade_check_leaves_no_daemon") }
}
}
}
