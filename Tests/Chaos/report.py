"""The chaos figures in a few lines an operator can read (the JSON line after them has everything)."""


def summary(f):
    lines = [f"chaos: {f['pool']} pool of {f['workers']}, {f['seconds']:g} s, seed {f['seed']}"]
    if "faults" in f:
        k = f["faults"]
        lines.append(f"  faults: {k['total']} ({k['worker_kill']} worker SIGKILL, {k['worker_stop']} worker SIGSTOP/SIGCONT, "
                     f"{k['supervisor_stop']} supervisor SIGSTOP/SIGCONT, {f.get('supervisor_stopped_seconds')} s stopped in all); "
                     f"{k['skipped_no_live_worker']} attempts found no live worker")
    if "requests" in f:
        r = f["requests"]
        lines.append(f"  requests: {r['ok']} ok; failed: {r['refused']} refused, {r['lost_with_a_worker']} lost with a dying worker "
                     f"({r['by_traffic']['new']['lost']} new, {r['by_traffic']['keepalive']['lost']} kept-alive; "
                     f"{r['lost_without_a_death']} with no death), {r['timeout']} timed out, {r['bad_status']} not 200; "
                     f"latency p50 {r['latency_p50']} s, p99 {r['latency_p99']} s, max {r['latency_max']} s")
        lines.append(f"  workers: {f['workers_seen']} seen, {f['worker_deaths_seen']} deaths, {f['watchdog_aborts']} watchdog aborts "
                     f"({len(f['watchdog_aborts_of_running_workers'])} of workers we never stopped)")
    if "back_to_ready_seconds" in f:
        lines.append(f"  back to {f['workers']} ready {f['back_to_ready_seconds']} s after the last fault")
    if "fds_after" in f:
        lines.append(f"  supervisor: fds {f['fds_before']} -> {f['fds_after']}, RSS {f['rss_before_mib']} -> {f['rss_after_mib']} MiB, "
                     f"CPU/run-queue wait during the chaos {f.get('supervisor_cpu_and_runqueue_wait_during_chaos')} s, "
                     f"seen blocked on our notify reader {f.get('supervisor_seen_blocked_on_notify_reader')} times")
        lines.append(f"  zombies: {f['zombies_at_end']} at the end, {f['zombies_lingering']} lingering, at most {f['zombies_most_at_once']} "
                     f"at once (before reaping); orphans: {len(f['orphans'])} at rest, {len(f['left_after_stop'])} after the stop")
        lines.append(f"  systemd watchdog: {f['watchdog_pings']} WATCHDOG=1, largest gap outside our SIGSTOPs "
                     f"{f['watchdog_largest_gap_seconds']} s ({f['watchdog_largest_gap_less_runqueue_wait_seconds']} s less run-queue wait)")
    if "exit_code" in f:
        lines.append(f"  SIGTERM at the end: exit {f['exit_code']} in {f['stop_seconds']} s")
    return "\n".join(lines)
