import Foundation
import Glibc
import Testing

/// Hardening, round two (issue 25): each case a scenario of Hostile/round_two.py against the real binaries.
extension Hostile {
@Suite(.timeLimit(.minutes(5)))
struct RoundTwo {
    @Test("under ulimit -n 128, workers 150 and an autoscaling ceiling of 100 are refused or capped with the reason; crash_loop = exit does not fire")
    func countsBeyondTheFileLimit() { runHostile("fd_limit") }

    @Test("spawns failing with EMFILE (limit lowered under a running supervisor) are no crash loop: crash_loop = exit does not fire, growth is refused")
    func emfileAtSpawn() { runHostile("emfile_at_spawn") }

    @Test("16, then 1,000 silent connections to metrics_bind (re-opened when closed) leave /livez and /readyz answering 200 within 1 s")
    func probesUnderIdleConnections() { runHostile("probes_under_idle_connections") }

    @Test("at EMFILE the metrics listener does not spin, and /livez is still answered")
    func metricsListenerAtEMFILE() { runHostile("metrics_emfile") }

    @Test("started from the default configuration file, a reload after the file was moved away is refused and the workers stay")
    func reloadWithTheDefaultFileGone() { runHostile("reload_default_config_missing") }

    @Test("a configuration file over 1 MiB is refused with exit 78, not cut")
    func configFileOver1MiB() { runHostile("config_file_over_1mib") }

    @Test("a reload whose configuration path became a FIFO is refused at once and the loop keeps answering")
    func configPathThatBlocksOnOpen() { runHostile("config_path_blocks_on_open") }

    @Test("a user whose lowest supplementary group is control_group may read status")
    func controlGroupAsFirstSupplementaryGroup() { runHostile("control_group_first_supplementary") }

    @Test("a failed reload's reason in status does not quote configuration values to read-only members")
    func reloadErrorHidesValuesFromReaders() { runHostile("reload_error_hides_values_from_readers") }

    @Test("an events follower dropped for reading too slowly says so on stderr and exits non-zero; one that keeps up exits 0 at stop")
    func evictedEventsFollower() { runHostile("evicted_events_follower", timeout: 150) }

    @Test("a SIGKILLed supervisor's workers.XXXXXX directory is removed at the next start; a running one's and others' stay")
    func staleWorkerDirectories() { runHostile("stale_worker_dirs") }

    @Test("an absolute-form request line is answered by its path, and a 1 MB header gets a readable 431, by metrics_bind and the bundled worker")
    func requestForms() { runHostile("request_forms") }
}
}
