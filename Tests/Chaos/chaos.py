#!/usr/bin/env python3
"""Chaos test (issue 11): a real `hyperglass start` under HTTP load on loopback, hit for --seconds by
random faults (SIGKILL of workers, SIGSTOP/SIGCONT of workers, SIGSTOP/SIGCONT of the supervisor
itself), then checked against the invariants a supervisor exists for:

  * the supervisor never died, and still drains and exits 0 on SIGTERM at the end;
  * it is back to N ready workers within --ready-bound seconds of the last fault;
  * no zombie outlives --zombie-grace s of the supervisor running, none is left at the end; no orphan
    (a process of a worker's process group, or one reparented to us, that is not a current worker);
  * its fd count is the same as before, its RSS grew by at most --rss-slack MiB;
  * its WATCHDOG=1 pings to systemd (our NOTIFY_SOCKET) never paused longer than WATCHDOG_USEC,
    leaving out the time we had it stopped;
  * no new connection was refused (it holds the listening socket), none timed out, none got a
    non-200; requests lost with a worker (accepted, then EOF/reset) only while some worker died,
    at most one per client connection per death.

  python3 Tests/Chaos/chaos.py --bin-dir .build/debug                  # 60 s, bundled workers (make chaos)
  python3 Tests/Chaos/chaos.py --bin-dir .build/debug --seconds 12     # the short run of make test
  python3 Tests/Chaos/chaos.py --bin-dir .build/debug --pool uvicorn   # uvicorn --fd 3 workers

Prints the figures, then one JSON line; exit 0 when every invariant held, 1 otherwise.
Every process started here is ended by pid; every wait is bounded.
"""
import argparse, json, os, random, subprocess, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import faults, procs  # noqa: E402
from pool import ROOT, Supervisor  # noqa: E402
from report import summary  # noqa: E402
from verdict import judge  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "debug"))
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--rate", type=float, default=40, help="worker fault attempts per second (a few find no live worker)")
parser.add_argument("--workers", type=int, default=12)
parser.add_argument("--pool", choices=("hyperglass", "uvicorn"), default="hyperglass")
parser.add_argument("--seed", type=int, default=None)
parser.add_argument("--kill-share", type=float, default=0.35, help="share of worker faults that are SIGKILL (the rest SIGSTOP)")
parser.add_argument("--no-supervisor-stops", action="store_true", help="fault the workers only")
parser.add_argument("--load-rate", type=float, default=100, help="new connections per second")
parser.add_argument("--keepalive", type=int, default=4)
parser.add_argument("--watchdog-usec", type=int, default=1_000_000, help="the supervisor's WATCHDOG_USEC")
parser.add_argument("--ready-bound", type=float, default=10.0)
parser.add_argument("--zombie-grace", type=float, default=1.0)
parser.add_argument("--log", help="keep the supervisor's log (with its workers') in this file")
parser.add_argument("--rss-slack", type=float, default=4.0, help="MiB")
args = parser.parse_args()
seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)

# Restarts fast enough that a pool under 20 faults/s keeps having workers to hit; the default 1 s..30 s
# backoff would leave the slots waiting and make the bound on "back to N ready" 30 s.
FLAGS = ["--readiness", "notify", "--backoff-initial", "100ms", "--backoff-max", "500ms", "--backoff-reset", "10s",
         "--graceful-timeout", "5s"]
if args.pool == "hyperglass":
    # A worker stopped longer than 1 s is aborted (SIGABRT) and replaced. The Swift runtime's crash
    # report would take seconds of CPU per abort on this debug build (symbolication): not what is tested.
    FLAGS += ["--watchdog", "1s", "--environment", "SWIFT_BACKTRACE=enable=no"]
    COMMAND = [os.path.join(args.bin_dir, "hyperglass-worker")]
else:  # uvicorn sends no WATCHDOG=1; the example app sends READY=1 from its lifespan startup
    COMMAND = [sys.executable, "-m", "uvicorn", "--fd", "3", "--lifespan", "on", "--log-level", "warning",
               "--timeout-graceful-shutdown", "3", "--app-dir", os.path.join(ROOT, "config", "examples"), "asgi_app:app"]


def wait_for(condition, seconds, step=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def main():
    procs.become_subreaper()
    sup = Supervisor(args.bin_dir, args.workers, FLAGS, COMMAND, args.watchdog_usec)
    load = tracker = None
    figures = {"pool": args.pool, "workers": args.workers, "seconds": args.seconds, "rate": args.rate, "seed": seed}
    try:
        if not wait_for(lambda: sup.ready_count() == args.workers, 60):
            return fail(figures, "the pool never got to %d ready at start" % args.workers, sup)
        time.sleep(1.0)  # let start-up allocations settle before the "before" figures
        figures["fds_before"] = procs.fd_count(sup.pid)
        figures["rss_before_mib"] = round(procs.rss_kib(sup.pid) / 1024, 2)

        injector = None
        tracker = procs.Tracker(sup.pid, lambda: injector.running() if injector else (True, 0.0),
                                zombie_grace=args.zombie_grace)
        injector = faults.Injector(sup.pid, tracker, seed, weights=(args.kill_share, 1 - args.kill_share),
                                   supervisor_every=(1e9, 1e9) if args.no_supervisor_stops else (2.0, 6.0))
        load = subprocess.Popen([sys.executable, os.path.join(HERE, "load.py"), "--port", str(sup.port),
                                 "--rate", str(args.load_rate), "--keepalive", str(args.keepalive)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        load.stdout.readline()  # "running"
        time.sleep(0.5)

        chaos_start = time.monotonic()
        rng = random.Random(seed + 1)
        next_fault = chaos_start
        supervisor_died = None
        while (now := time.monotonic()) < chaos_start + args.seconds:
            if not sup.alive():
                supervisor_died = now - chaos_start
                break
            injector.tick(now)
            if now >= next_fault and args.rate > 0:
                injector.inject(now)
                next_fault += rng.expovariate(args.rate)
            time.sleep(max(0.0, min(0.01, next_fault - time.monotonic())) if args.rate > 0 else 0.01)
        injector.resume_all()
        chaos_end = time.monotonic()
        figures["faults"] = dict(injector.counts, total=injector.total, skipped_no_live_worker=injector.skipped)
        figures["supervisor_stopped_seconds"] = round(sum(e - s for s, e in injector.supervisor_stops), 2)
        if supervisor_died is not None:
            figures["supervisor_died_at"] = round(supervisor_died, 2)
            return fail(figures, "the supervisor died during the chaos", sup)

        back = wait_for(lambda: sup.ready_count() == args.workers and time.monotonic(), args.ready_bound + 20)
        figures["back_to_ready_seconds"] = round(back - chaos_end, 3) if back else None
        ready_at = back or time.monotonic()
        time.sleep(1.0)  # a little load on the recovered pool
        load.stdin.close()
        traffic = json.loads(load.stdout.readline())
        load.wait(15)
        load = None

        # The pool at rest: every child of the supervisor is a current worker, or it has left zombies/orphans.
        # A worker aborted by its watchdog may take up to watchdog_kill_after (5 s) to go: wait that long.
        last = {}
        def at_rest():
            last["workers"] = {w["pid"] for w in sup.status().get("workers", []) if w.get("pid")}
            last["kids"] = set(procs.children(sup.pid))
            return last["kids"] == last["workers"] and len(last["workers"]) == args.workers
        figures["at_rest"] = bool(wait_for(at_rest, 8))
        workers, kids = last["workers"], last["kids"]
        time.sleep(0.5)
        figures["fds_after"] = procs.fd_count(sup.pid)
        figures["rss_after_mib"] = round(procs.rss_kib(sup.pid) / 1024, 2)
        figures["zombies_at_end"] = sum(1 for pid in kids if (procs.stat(pid) or ("",))[0] == "Z")
        figures["zombies_lingering"] = len(tracker.lingering_zombies)
        figures["zombies_most_at_once"] = tracker.most_zombies
        strays = [pid for pid in kids - workers if (procs.stat(pid) or ("",))[0] != "Z"]
        strays += [pid for pid, _ in procs.in_groups(tracker.pgids) if pid not in workers and procs.stat(pid)
                   and pid not in procs.descendants(sup.pid)]
        strays += [pid for pid in procs.children(os.getpid()) if pid not in (sup.pid, sup.sink.pid)]  # reparented to us
        figures["orphans"] = sorted(set(strays))
        # How long systemd would have waited for WATCHDOG=1, leaving out our SIGSTOPs; and the same less the
        # time the supervisor sat runnable on a run queue (a machine too busy to run it is not its fault).
        gaps = sup.ping_gaps(chaos_start, ready_at, [(s, e) for s, e in injector.supervisor_stops]) or []
        figures["watchdog_pings"] = len(gaps) - 1 if gaps else 0
        with open(sup.notify_log, errors="replace") as f:
            figures["notify_messages_to_systemd"] = sum(1 for _ in f)  # STATUS=, WATCHDOG=1, READY=1...
        worst = max(gaps, key=lambda g: g[1] - g[0] - g[2], default=None)
        figures["watchdog_largest_gap_seconds"] = round(worst[1] - worst[0] - worst[2], 3) if worst else None
        if worst:
            figures["watchdog_largest_gap_at"] = {
                "from": round(worst[0] - chaos_start, 3), "to": round(worst[1] - chaos_start, 3), "stopped_by_us": round(worst[2], 3),
                "supervisor_cpu_and_runqueue_wait": tracker.sched_between(worst[0], worst[1])}
        net = [(g[1] - g[0] - g[2] - (tracker.sched_between(g[0], g[1]) or (0, 0))[1], g) for g in gaps]
        worst_net = max(net, default=None)
        figures["watchdog_largest_gap_less_runqueue_wait_seconds"] = round(worst_net[0], 3) if worst_net else None
        if worst_net:
            g = worst_net[1]
            figures["watchdog_largest_net_gap_at"] = {
                "from": round(g[0] - chaos_start, 3), "to": round(g[1] - chaos_start, 3), "stopped_by_us": round(g[2], 3),
                "supervisor_cpu_and_runqueue_wait": tracker.sched_between(g[0], g[1])}
        figures["supervisor_seen_blocked_on_notify_reader"] = len(tracker.blocked_on_notify)
        figures["supervisor_seen_asleep_outside_epoll"] = tracker.wchans
        figures["supervisor_cpu_and_runqueue_wait_during_chaos"] = tracker.sched_between(chaos_start, chaos_end)
        figures["workers_seen"] = tracker.seen
        figures["worker_deaths_seen"] = len(tracker.deaths)
        deaths = sorted(tracker.deaths + injector.kills)
        death_of = dict(tracker.death_of)
        tracker.stop()

        code, took = sup.stop()
        figures["exit_code"], figures["stop_seconds"] = code, round(took, 2)
        left = procs.in_groups(tracker.pgids)
        figures["left_after_stop"] = left
        for pid in set(procs.children(os.getpid())) - {sup.sink.pid}:  # reap what came to us (subreaper), counted above
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        problems = judge(figures, traffic, deaths, death_of, injector, sup.log_lines(), args)
        return report(figures, problems, sup)
    finally:
        if load and load.poll() is None:
            load.kill()
            load.wait(5)
        if tracker:
            tracker.stop()
        if sup.alive():
            sup.stop()
        if args.log:
            with open(args.log, "w") as f:
                f.write("\n".join(sup.log_lines()) + "\n")
        sup.cleanup()


def fail(figures, message, sup):
    return report(figures, [message], sup)


def report(figures, problems, sup):
    print(summary(figures))
    print(json.dumps(figures, sort_keys=True), flush=True)
    for problem in problems:
        print("FAIL: " + problem, file=sys.stderr)
    if problems:
        print("supervisor log (tail):\n" + sup.log_tail(), file=sys.stderr)
        return 1
    print(f"chaos: every invariant held (seed {seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
