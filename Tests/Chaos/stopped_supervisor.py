#!/usr/bin/env python3
"""Regression test: a supervisor stopped (SIGSTOP, a debugger, a swap storm) for longer than the workers'
watchdog must not abort its healthy workers when it resumes.

While it is stopped the workers keep sending WATCHDOG=1 (they never block on it); the datagrams wait on
their notify sockets. On SIGCONT epoll may list the supervisor's timer before those sockets. The
supervisor used to handle the timer first and judge every worker hung: the chaos test saw the whole
pool aborted after a 3 s stop, 17 healthy workers in 25 s. Its own systemd watchdog at 100 ms keeps a
timer due while it is stopped, as in the chaos test.

  python3 Tests/Chaos/stopped_supervisor.py --bin-dir .build/debug

Exit 0 when no worker was replaced, 1 otherwise. Every process started is ended by pid.
"""
import argparse, os, signal, sys, time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pool import ROOT, Supervisor  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "debug"))
parser.add_argument("--workers", type=int, default=4)
parser.add_argument("--stops", type=int, default=3)
args = parser.parse_args()


def main():
    sup = Supervisor(args.bin_dir, args.workers, ["--readiness", "notify", "--watchdog", "1s"],
                     [os.path.join(args.bin_dir, "hyperglass-worker")], watchdog_usec=200_000)
    try:
        deadline = time.monotonic() + 30
        while sup.ready_count() != args.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        before = sorted(w.get("pid") or 0 for w in sup.status().get("workers", []))
        if len(before) != args.workers:
            print(f"FAIL: the pool never got to {args.workers} ready\n{sup.log_tail()}", file=sys.stderr)
            return 1
        for _ in range(args.stops):
            time.sleep(1.2)
            os.kill(sup.pid, signal.SIGSTOP)
            time.sleep(2.5)  # 2.5 watchdog intervals: 5 WATCHDOG=1 per worker wait (the queue holds 10)
            os.kill(sup.pid, signal.SIGCONT)
        time.sleep(1.5)  # long enough for a worker judged hung to be aborted and replaced
        after = sorted(w.get("pid") or 0 for w in sup.status().get("workers", []))
        aborted = [line for line in sup.log_lines() if "watchdog missed" in line]
        print(f"workers before {before}, after {after}; {len(aborted)} watchdog aborts after {args.stops} stops of 2.5 s")
        if aborted or after != before:
            print("FAIL: healthy workers were aborted after the supervisor resumed:\n" + "\n".join(aborted[:8]), file=sys.stderr)
            return 1
        return 0
    finally:
        code, _ = sup.stop()
        sup.cleanup()


if __name__ == "__main__":
    sys.exit(main())
