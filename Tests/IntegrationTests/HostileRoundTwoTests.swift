import Foundation
import Glibc
import Testing

/// Hardening, round two (issue 25): each case a scenario of Hostile/round_two.py against the real binaries.
extension Hostile {
@Suite(.timeLimit(.minutes(5)))
struct RoundTwo {
    @Test("under ulimit -n 128, workers 150 and an autoscaling ceiling of 100 are refused or capped with the reason; crash_loop = exit does not fire")
    func countsBeyondTheFileLimit() { runHostile("fd_limit") }

    @Test("16, then 1,000 silent connections to metrics_bind (re-opened when closed) leave /livez and /readyz answering 200 within 1 s")
    func probesUnderIdleConnections() { runHostile("probes_under_idle_connections") }

    @Test("at EMFILE the metrics listener does not spin, and /livez is still answered")
    func metricsListenerAtEMFILE() { runHostile("metrics_emfile") }
}
}
