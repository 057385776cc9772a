#!/usr/bin/env python3
"""Container mode: `hyperglass start` as PID 1 of a real PID namespace, the way a container runtime runs it.

Each test starts `unshare --pid --fork --mount-proc --kill-child hyperglass start ...`: the supervisor is
PID 1 of a new PID namespace (no systemd, no init shim such as tini), with its own /proc. Signals are sent
from the parent namespace to the supervisor's host pid, as `docker stop` / `kubectl delete` do; the
kernel delivers only signals PID 1 handles, so an unhandled one shows here as "nothing happened".

  python3 Tests/Container/container_test.py --bin-dir .build/release          # everything (`make test-container`)
  python3 Tests/Container/container_test.py --bin-dir .build/release --quick  # the short set `make test` runs

Needs root (a PID namespace) and loopback only. Skips, saying why, when not root or unshare is missing.
Every process started here is ended by pid (the namespace dies with its PID 1; --kill-child ends
PID 1 if this driver dies), every wait is bounded in time.
"""
import argparse, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Acceptance"))
import guest_client  # noqa: E402  (HTTP and WebSocket clients, standard library only)

BIN = os.path.join(ROOT, ".build", "release")  # set by main
WORKERS = 2
# What a log collector needs: one event per line, prefixed by who wrote it (the supervisor, PID 1 here,
# or a worker by slot and pid), a level word on warnings and errors.
LOG_LINE = re.compile(r"^(?:hyperglass\[1\]|worker \d+\[\d+\]): (?:(?:warning|error): )?\S.*$")


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def wait_for(what, predicate, seconds, interval=0.05):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise Failure(f"timed out after {seconds}s waiting for {what} (last: {last!r})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_children(pid):
    """Host pids of pid's children (every thread's list)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Container:
    """The supervisor as PID 1 of its own PID namespace; `host_pid` is its pid as seen from here."""

    def __init__(self, *flags, workers=WORKERS, env=None):
        self.dir = tempfile.mkdtemp(prefix="hg-container-")
        self.port = free_port()
        self.socket = os.path.join(self.dir, "control.sock")
        self.err = open(os.path.join(self.dir, "stderr"), "w+")
        self.out = open(os.path.join(self.dir, "stdout"), "w+")
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                os.path.join(BIN, "hyperglass"), "start", "--workers", str(workers),
                "--bind", f"127.0.0.1:{self.port}", "--control-socket", self.socket, *flags]
        # A container's environment: no systemd variables, no terminal.
        # An empty configuration file: the host's /etc/hyperglass-supervisor/supervisor.conf (or the old /etc/hyperglass one) must not leak in.
        config = os.path.join(self.dir, "supervisor.conf")
        open(config, "w").close()
        clean = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HYPERGLASS_CONFIG": config, **(env or {})}
        self.unshare = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err, env=clean)
        # A supervisor that fails at once (a config error) may be gone before it is seen.
        found = wait_for("the namespace's PID 1",
                         lambda: (proc_children(self.unshare.pid) or [None])[0] or (self.unshare.poll() is not None and -1), 10)
        self.host_pid = found if found > 0 else None
        if self.host_pid:
            check(self.nspid(self.host_pid) == 1, "the supervisor is not PID 1 of its namespace")

    @staticmethod
    def nspid(host_pid):
        with open(f"/proc/{host_pid}/status") as f:
            line = next(l for l in f if l.startswith("NSpid:"))
        return int(line.split()[-1])

    def ctl(self, *args, timeout=15):
        return subprocess.run([os.path.join(BIN, "hyperglassctl"), "--socket", self.socket, *args],
                              capture_output=True, text=True, timeout=timeout)

    def status(self):
        result = self.ctl("status", "--json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait_ready(self, count=WORKERS, seconds=20):
        def ready():
            s = self.status()
            return s if s and s["supervisor"]["ready"] == count and s["supervisor"]["state"] == "running" else None
        return wait_for(f"{count} ready workers", ready, seconds)

    def worker_host_pids(self):
        """Worker pid (namespace) -> host pid, from the supervisor's children."""
        return {self.nspid(p): p for p in proc_children(self.host_pid) if proc_state(p) not in (None, "Z")}

    def signal(self, signo):
        os.kill(self.host_pid, signo)

    def wait_exit(self, seconds):
        try:
            return self.unshare.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise Failure(f"the supervisor did not exit within {seconds}s")

    def stderr(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def end(self):
        if self.unshare.poll() is None and self.host_pid:
            try:
                os.kill(self.host_pid, signal.SIGKILL)  # the namespace's other processes die with it
            except ProcessLookupError:
                pass
            self.unshare.kill()
            self.unshare.wait(10)
        self.err.close()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def in_background(function, *args):
    box = {}
    def target():
        try:
            box["result"] = function(*args)
        except Exception as error:  # recorded: the test decides whether it matters
            box["error"] = repr(error)
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


# ---- tests ---------------------------------------------------------------------------------------

ORPHANS = 1000
# A shell that starts the grandchildren in the background and exits: all of them are orphaned and
# re-parented to PID 1. Each blocks reading {fd} (a pipe this driver holds), so none can exit, and be
# reaped by the shell, before the shell is gone; closing the pipe ends them all at once (a burst of
# coalesced SIGCHLDs).
ORPHAN_MAKER = "i=0; while [ $i -lt %d ]; do read x <&{fd} & i=$((i+1)); done" % ORPHANS


def count_zombies(parent):
    return sum(1 for p in proc_children(parent) if proc_state(p) == "Z")


def test_orphans_are_reaped():
    """1,000 orphaned grandchildren re-parented to PID 1 are all reaped; the pool is untouched."""
    c = Container()
    try:
        before = c.wait_ready()
        pids = sorted(w["pid"] for w in before["workers"])
        # A process inside the namespace (as `docker exec` makes one) whose grandchildren outlive it.
        r, w = os.pipe()
        try:
            # Output to a file, not a pipe: the orphans hold it open, a pipe would not see EOF until they end.
            with tempfile.TemporaryFile("w+") as err:
                maker = subprocess.run(["nsenter", "--target", str(c.host_pid), "--pid", "--mount", "--", "/bin/sh", "-c",
                                        ORPHAN_MAKER.format(fd=r)], timeout=60, stdin=subprocess.DEVNULL, pass_fds=(r,),
                                       stdout=subprocess.DEVNULL, stderr=err)
                err.seek(0)
                text = err.read()
            check(maker.returncode == 0 and not text, f"the orphan maker failed: {text[-500:]}")
            orphans = [p for p in proc_children(c.host_pid) if proc_state(p) not in (None, "Z")]
            check(len(orphans) == ORPHANS + WORKERS, f"{len(orphans) - WORKERS} orphans under PID 1, not {ORPHANS}")
        finally:
            os.close(r)
            os.close(w)  # every orphan reads EOF and exits
        def settled():
            alive = [p for p in proc_children(c.host_pid) if proc_state(p) not in (None, "Z")]
            zombies = count_zombies(c.host_pid)
            return len(alive) == WORKERS and zombies == 0 or None
        wait_for("every orphan exited and reaped", settled, 15)
        after = c.wait_ready()
        check(sorted(w["pid"] for w in after["workers"]) == pids, f"workers changed: {pids} -> {after['workers']}")
        status, _ = guest_client.get("127.0.0.1", c.port, "/")
        check(status == 200, f"GET / after the orphans: {status}")
        return f"{ORPHANS} orphans, 0 zombies"
    finally:
        c.end()


def test_sigterm_drains_with_1001_and_exits_0(signo=signal.SIGTERM):
    """SIGTERM to PID 1 (docker stop, kubectl delete): WebSockets closed with 1001, an in-flight
    request completes, every worker exits, the supervisor exits 0."""
    c = Container()
    try:
        c.wait_ready()
        ws_thread, ws = in_background(guest_client.websocket, "127.0.0.1", c.port, 20)
        slow_thread, slow = in_background(lambda: guest_client.get("127.0.0.1", c.port, "/sleep?ms=1500", timeout=20))
        time.sleep(0.5)  # the WebSocket is open and the slow request is in a worker
        workers = c.worker_host_pids()
        started = time.monotonic()
        c.signal(signo)
        code = c.wait_exit(30)
        took = time.monotonic() - started
        ws_thread.join(10)
        slow_thread.join(10)
        name = signal.Signals(signo).name
        check(ws.get("result", {}).get("close_code") == 1001, f"{name}: WebSocket result {ws}")
        check(slow.get("result", (None,))[0] == 200, f"{name}: the in-flight request did not complete: {slow}")
        check(code == 0, f"{name}: exit status {code}, not 0\n{c.stderr()}")
        check(all(proc_state(p) is None for p in workers.values()), f"{name}: workers left behind")
        lines = c.stderr().splitlines()
        bad = [l for l in lines if not LOG_LINE.match(l)]
        check(lines and not bad, f"log lines a collector cannot attribute: {bad[:5]}")
        return f"{name}: drained in {took:.2f}s, close 1001, exit 0"
    finally:
        c.end()


def test_sigint_drains_like_sigterm():
    """SIGINT (`docker run` then Ctrl-C, or STOPSIGNAL SIGINT) drains the same way."""
    return test_sigterm_drains_with_1001_and_exits_0(signal.SIGINT)


def test_second_sigterm_kills_at_once():
    """A second SIGTERM skips the wait: a worker stuck in a long request is killed and the supervisor
    exits promptly instead of waiting out graceful_timeout."""
    c = Container("--graceful-timeout", "20s")
    try:
        c.wait_ready()
        slow_thread, slow = in_background(lambda: guest_client.get("127.0.0.1", c.port, "/sleep?ms=15000", timeout=30))
        time.sleep(0.5)
        c.signal(signal.SIGTERM)
        time.sleep(0.5)
        check(c.unshare.poll() is None, "exited before the in-flight request finished")
        started = time.monotonic()
        c.signal(signal.SIGTERM)
        code = c.wait_exit(10)
        took = time.monotonic() - started
        return f"second SIGTERM: exit {code} after {took:.2f}s"
    finally:
        c.end()


def test_killed_worker_restarts_and_health_flips():
    """SIGKILL of a worker: it is replaced; `hyperglassctl health --ready-share 1` says 1 while the
    slot waits out its restart backoff, and 0 once the replacement is ready."""
    c = Container()
    try:
        c.wait_ready()
        check(c.ctl("health", "--ready-share", "1").returncode == 0, "health is not 0 with every worker ready")
        # The first restart is immediate; the second failure in a row waits backoff_initial (1 s):
        # that is the window in which the pool is short of a worker.
        # Slot 0 both times: backoff is per slot.
        for round_ in range(2):
            victim_ns = next(w["pid"] for w in c.status()["workers"] if w["id"] == 0)
            victim = c.worker_host_pids()[victim_ns]
            os.kill(victim, signal.SIGKILL)
            wait_for("the killed worker gone", lambda: victim_ns not in c.worker_host_pids(), 5)
            if round_ == 0:
                c.wait_ready()
        result = wait_for("health exit 1", lambda: (lambda r: r if r.returncode == 1 else None)(c.ctl("health", "--ready-share", "1")), 3)
        check("1/2 workers ready" in result.stdout, f"health reason: {result.stdout!r}")
        check(c.ctl("health", "--ready-share", "50%").returncode == 0, "health --ready-share 50% with 1/2 ready is not 0")
        status = c.wait_ready()
        check(c.ctl("health", "--ready-share", "1").returncode == 0, "health is not 0 after the replacement got ready")
        return f"worker replaced twice; health 1 ({result.stdout.strip()}) then 0"
    finally:
        c.end()


def test_health_usage_and_no_supervisor():
    """health: 2 for a bad share, 1 with a reason when no supervisor answers."""
    hc = os.path.join(BIN, "hyperglassctl")
    bad = subprocess.run([hc, "health", "--ready-share", "1.5"], capture_output=True, text=True, timeout=10)
    check(bad.returncode == 2, f"--ready-share 1.5: exit {bad.returncode}")
    gone = subprocess.run([hc, "--socket", "/nonexistent/control.sock", "health"], capture_output=True, text=True, timeout=10)
    check(gone.returncode == 1 and "no supervisor" in gone.stderr, f"no supervisor: exit {gone.returncode} {gone.stderr!r}")
    return "usage 2, no supervisor 1"


def test_sighup_rolls_the_workers():
    """SIGHUP (what `docker kill -s HUP` or a config-map reloader sends): every worker replaced, still running."""
    c = Container()
    try:
        old = set(c.wait_ready()["workers"][i]["pid"] for i in range(WORKERS))
        c.signal(signal.SIGHUP)
        def rolled():
            s = c.status()
            if not s or s["supervisor"]["state"] != "running" or s["supervisor"]["ready"] != WORKERS:
                return None
            new = {w["pid"] for w in s["workers"]}
            return new if not (new & old) else None
        wait_for("every worker replaced", rolled, 30)
        check(c.unshare.poll() is None, "the supervisor exited on SIGHUP")
        return "SIGHUP: all workers rolled"
    finally:
        c.end()


def test_sigquit_drains_like_sigterm():
    """SIGQUIT (`docker kill -s QUIT`, nginx-style images' STOPSIGNAL) drains like SIGTERM."""
    return test_sigterm_drains_with_1001_and_exits_0(signal.SIGQUIT)


def test_exit_status_for_a_config_error_is_78():
    """A configuration error: exit 78 (EX_CONFIG) with the reason on stderr, no workers started."""
    c = Container("--workers", "many")
    try:
        code = c.wait_exit(10)
        check(code == 78, f"exit {code}, not 78: {c.stderr()}")
        check("workers" in c.stderr(), f"the error does not name the key: {c.stderr()!r}")
        return "config error: exit 78"
    finally:
        c.end()


def test_crash_loop_exit_is_1():
    """crash_loop = exit with a worker that never starts: the supervisor exits 1 so the orchestrator
    restarts the container (CrashLoopBackOff) instead of it looping quietly inside."""
    c = Container("--crash-loop", "exit", "--backoff-initial", "100ms", "--backoff-max", "200ms", "--", "/bin/false")
    try:
        code = c.wait_exit(60)
        check(code == 1, f"exit {code}, not 1:\n{c.stderr()[-2000:]}")
        check("crash" in c.stderr().lower(), f"no crash-loop message:\n{c.stderr()[-2000:]}")
        return "crash loop: exit 1"
    finally:
        c.end()


LAME_DUCK = 3.0


def test_lame_duck_serves_while_not_ready_then_drains():
    """lame_duck: after SIGTERM, /readyz says 503 and `hyperglassctl health` 1 at once, but new requests
    are still served and an open WebSocket stays open for the delay; then the drain closes it with 1001
    and the supervisor exits 0."""
    metrics_port = free_port()
    c = Container("--lame-duck", f"{LAME_DUCK:g}s", "--metrics-bind", f"127.0.0.1:{metrics_port}")
    try:
        c.wait_ready()
        status, _ = guest_client.get("127.0.0.1", metrics_port, "/readyz")
        check(status == 200, f"/readyz before SIGTERM: {status}")
        ws_thread, ws = in_background(lambda: (guest_client.websocket("127.0.0.1", c.port, 30), time.monotonic()))
        time.sleep(0.5)  # the WebSocket is open
        started = time.monotonic()
        c.signal(signal.SIGTERM)
        served, not_ready, health_failed, states = 0, 0, 0, set()
        # Probe until just before the delay ends (leaving room for a slow 2-core machine).
        while time.monotonic() - started < LAME_DUCK - 0.7:
            status, _ = guest_client.get("127.0.0.1", c.port, "/", timeout=5)
            served += status == 200
            ready, _ = guest_client.get("127.0.0.1", metrics_port, "/readyz", timeout=5)
            not_ready += ready == 503
            health_failed += c.ctl("health").returncode == 1
            states.add((c.status() or {}).get("supervisor", {}).get("state"))
            time.sleep(0.1)
        check(c.unshare.poll() is None, "the supervisor exited during the lame-duck delay")
        check(ws_thread.is_alive(), f"the WebSocket closed during the lame-duck delay: {ws}")
        check(served >= 3 and not_ready == served, f"during the lame duck: {served} requests served, /readyz 503 {not_ready} times")
        check(health_failed == served, f"hyperglassctl health failed {health_failed} of {served} times")
        check(states == {"lame-duck"}, f"status states during the lame duck: {states}")
        code = c.wait_exit(30)
        took = time.monotonic() - started
        ws_thread.join(10)
        result, closed_at = ws.get("result", ({}, None))
        check(result.get("close_code") == 1001, f"WebSocket result {ws}")
        check(closed_at is not None and closed_at - started >= LAME_DUCK - 0.1,
              f"the WebSocket closed {closed_at and closed_at - started}s after SIGTERM, inside the lame-duck delay")
        check(code == 0, f"exit status {code}, not 0\n{c.stderr()}")
        check("lame duck for 3s" in c.stderr(), "no lame-duck line in the log")
        return (f"{served} requests served with /readyz 503 during {LAME_DUCK:g}s; WebSocket closed 1001 after "
                f"{closed_at - started:.2f}s; exit 0 after {took:.2f}s")
    finally:
        c.end()


def test_second_sigterm_during_lame_duck_drains_at_once():
    """A second SIGTERM during the lame-duck delay starts the drain now instead of waiting it out."""
    c = Container("--lame-duck", "20s")
    try:
        c.wait_ready()
        c.signal(signal.SIGTERM)
        wait_for("the lame-duck state", lambda: (c.status() or {}).get("supervisor", {}).get("state") == "lame-duck" or None, 5)
        started = time.monotonic()
        c.signal(signal.SIGTERM)
        code = c.wait_exit(10)
        took = time.monotonic() - started
        check(code == 0, f"exit status {code} after the second SIGTERM, not 0 (a drain, not a kill)")
        return f"second SIGTERM: drained and exited 0 after {took:.2f}s instead of 20s"
    finally:
        c.end()


QUICK = [test_orphans_are_reaped, test_sigterm_drains_with_1001_and_exits_0, test_lame_duck_serves_while_not_ready_then_drains,
         test_health_usage_and_no_supervisor]
ALL = QUICK + [test_sigint_drains_like_sigterm, test_second_sigterm_kills_at_once, test_killed_worker_restarts_and_health_flips,
               test_sighup_rolls_the_workers, test_sigquit_drains_like_sigterm, test_exit_status_for_a_config_error_is_78, test_crash_loop_exit_is_1,
               test_second_sigterm_during_lame_duck_drains_at_once]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--quick", action="store_true", help="only the short set that `make test` runs")
    parser.add_argument("-k", dest="only", help="run only tests whose name contains this")
    options = parser.parse_args()
    global BIN
    BIN = os.path.abspath(options.bin_dir)
    if os.geteuid() != 0:
        print("container: SKIPPED: a PID namespace needs root (sudo make test-container)")
        return 0
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        print("container: SKIPPED: unshare/nsenter (util-linux) not found")
        return 0
    for program in ("hyperglass", "hyperglassctl", "hyperglass-worker"):
        if not os.access(os.path.join(BIN, program), os.X_OK):
            print(f"container: {BIN}/{program} is missing; build first (make release, or --bin-dir)", file=sys.stderr)
            return 1
    began = time.monotonic()
    failed = 0
    for test in (QUICK if options.quick else ALL):
        if options.only and options.only not in test.__name__:
            continue
        started = time.monotonic()
        try:
            note = test()
            print(f"container: ok   {test.__name__} ({time.monotonic() - started:.1f}s){': ' + note if note else ''}", flush=True)
        except Exception as error:
            failed += 1
            print(f"container: FAIL {test.__name__} ({time.monotonic() - started:.1f}s): {error}", flush=True)
    print(f"container: {'FAILED' if failed else 'passed'} in {time.monotonic() - began:.1f}s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
