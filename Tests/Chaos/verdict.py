"""The chaos test's invariants, as one function of what was measured: figures in, problems out.

Failed requests. A worker that is SIGKILLed takes the connections it had accepted with it: the kernel
closes them (EOF or reset) and nothing can save a request already inside that process. So "lost"
requests are expected, but only (a) while some worker was dying (each must overlap a death, give or
take the pidfd poll's latency) and (b) at most one per client connection per death. New connections
are never refused (the supervisor holds the listening socket: a connection waits in its backlog
until a live worker accepts it), none time out (a stopped worker resumes or is aborted within 3 s)
and none get a non-200.
"""
import re

SLACK = 0.25  # seconds: a death is seen by polling pidfds; the client may see its EOF a little earlier
WATCHDOG_ABORT = re.compile(r"\(pid (\d+)\): watchdog missed")


def judge(figures, traffic, deaths, death_of, injector, log_lines, args):
    problems = []
    concurrency = 2 + args.keepalive  # load.py's sender threads plus kept-alive connections
    lost = [f for f in traffic["failures"] if f["kind"] == "lost"]
    unexplained = [f for f in lost if not any(f["start"] - SLACK <= d <= f["end"] + SLACK for d in deaths)]
    figures["requests"] = {
        "ok": traffic["ok"], "refused": traffic["refused"], "lost_with_a_worker": traffic["lost"],
        "lost_without_a_death": len(unexplained), "timeout": traffic["timeout"], "bad_status": traffic["status"],
        "by_traffic": traffic["by_traffic"], "latency_p50": traffic["latency_p50"],
        "latency_p99": traffic["latency_p99"], "latency_max": traffic["latency_max"]}
    aborted = [int(m.group(1)) for line in log_lines if (m := WATCHDOG_ABORT.search(line))]
    figures["watchdog_aborts"] = len(aborted)
    # A worker we never stopped that missed its watchdog: starved of CPU, or judged late by a supervisor
    # that was itself stopped. How long after our last SIGCONT of the supervisor it died says which.
    unstopped = sorted(set(aborted) - injector.ever_stopped)
    resumes = [end for _, end in injector.supervisor_stops if end]
    since_resume = lambda t: min((t - r for r in resumes if r <= t), default=None)
    figures["watchdog_aborts_of_running_workers"] = [
        {"pid": pid, "died_after_supervisor_resumed_s": round(since_resume(death_of[pid]), 3)
         if pid in death_of and since_resume(death_of[pid]) is not None else None} for pid in unstopped]
    examples = lambda kind: [f["error"] for f in traffic["failures"] if f["kind"] == kind][:3]

    if figures.get("exit_code") != 0:
        problems.append(f"the supervisor exited {figures.get('exit_code')} on SIGTERM after the chaos, not 0")
    if figures.get("back_to_ready_seconds") is None or figures["back_to_ready_seconds"] > args.ready_bound:
        problems.append(f"not back to {args.workers} ready within {args.ready_bound}s of the last fault "
                        f"(took {figures.get('back_to_ready_seconds')})")
    if figures["zombies_at_end"] or figures["zombies_lingering"]:
        problems.append(f"zombies: {figures['zombies_at_end']} at the end, {figures['zombies_lingering']} unreaped "
                        f"for over {args.zombie_grace}s of the supervisor running")
    if figures["orphans"] or figures["left_after_stop"]:
        problems.append(f"orphans: {figures['orphans']} at rest, {figures['left_after_stop']} after the stop")
    if figures["fds_after"] != figures["fds_before"]:
        problems.append(f"the supervisor's fds went {figures['fds_before']} -> {figures['fds_after']}")
    if figures["rss_after_mib"] > figures["rss_before_mib"] + args.rss_slack:
        problems.append(f"the supervisor's RSS went {figures['rss_before_mib']} -> {figures['rss_after_mib']} MiB "
                        f"(more than {args.rss_slack} MiB)")
    # The bound is systemd's: a gap of WATCHDOG_USEC and it kills the service. Time the supervisor spent
    # runnable but not running (another process had the CPU) is the machine's, not the supervisor's.
    net = figures["watchdog_largest_gap_less_runqueue_wait_seconds"]
    if net is None or net >= args.watchdog_usec / 1e6:
        problems.append(f"WATCHDOG=1 paused {net}s outside our SIGSTOPs and run-queue waits (raw "
                        f"{figures['watchdog_largest_gap_seconds']}s): systemd (WatchdogSec={args.watchdog_usec / 1e6:g}s) would have killed it")
    if unstopped:
        problems.append(f"{len(unstopped)} workers we never stopped were aborted by their watchdog "
                        f"(a resumed supervisor judging them before reading their pings?): {figures['watchdog_aborts_of_running_workers'][:4]}")
    if traffic["refused"]:
        problems.append(f"{traffic['refused']} new connections refused (the listening socket must always be there): {examples('refused')}")
    if traffic["timeout"]:
        problems.append(f"{traffic['timeout']} requests timed out: {examples('timeout')}")
    if traffic["status"]:
        problems.append(f"{traffic['status']} responses were not 200: {examples('status')}")
    if unexplained:
        nearest = lambda f: min((round(d - f["end"], 3) for d in deaths), key=abs, default=None)
        problems.append(f"{len(unexplained)} requests lost while no worker died: "
                        f"{[(f['error'], round(f['end'] - f['start'], 3), nearest(f)) for f in unexplained[:3]]} "
                        f"(error, seconds it took, nearest death relative to its end)")
    if len(lost) > concurrency * figures["worker_deaths_seen"]:
        problems.append(f"{len(lost)} requests lost with {figures['worker_deaths_seen']} worker deaths: more than one per client "
                        f"connection ({concurrency}) per death")
    return problems
