import Testing

/// Round three: the in-place upgrade, parallel rolls and their progress, attacked (Hostile/round_three.py).
extension Hostile {
@Suite(.timeLimit(.minutes(5)))
struct RoundThree {
    @Test("an upgrade to a binary that closes its output and hangs, or leaves a child holding it, is refused within 5 s; the loop answers and nothing it started lives on")
    func upgradeCheckThatHangsSilently() { runHostile("upgrade_check_that_hangs_silently") }

    @Test("an upgrade to a script saying 'can take over' in garbage, to a yes for another state version, to a directory, or by a read-only member is refused cleanly; pid and workers kept")
    func upgradeToImpostorBinary() { runHostile("upgrade_to_impostor_binary") }

    @Test("at EMFILE, metrics_bind answers a probe whose request comes 300 ms after its connection (it was closed unanswered: the flaky metrics_emfile run)")
    func metricsProbeAtEMFILESendsLate() { runHostile("metrics_probe_at_emfile_sends_late") }

    @Test("workers 3 --wait while the workers crash-loop is answered at once with the reason (it waited 15 minutes); restart all --wait does not claim a previous worker keeps serving")
    func countWaitDuringCrashLoop() { runHostile("count_wait_during_crash_loop") }

    @Test("hyperglassctl while a long prestart runs says the control socket opens once prestart has finished")
    func ctlDuringPrestart() { runHostile("ctl_during_prestart") }

    @Test("the upgrade check gets no fd but stdio (a lock and a pipe the supervisor was started with reached it); the supervisor keeps both across a real upgrade")
    func upgradeCheckGetsNoStrayFDs() { runHostile("upgrade_check_gets_no_stray_fds") }
}
}
