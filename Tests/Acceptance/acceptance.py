#!/usr/bin/env python3
"""Acceptance suite: the installed product under a booted systemd 252 (Debian 12's version).

Builds the release binaries (static Swift runtime), installs them with `make install DESTDIR=...`,
boots systemd as PID 1 of a container with ../shared/tools/systemd-testbed/testbed.sh (its own loopback
network, no Swift toolchain inside, so the binaries must stand alone), and drives the product only as an
operator would: systemctl, journalctl, hyperglassctl, and HTTP/WebSocket clients inside the guest.

Skips (exit 0, saying why) when not root, when the testbed script is absent, when it cannot boot
(unless HYPERGLASS_REQUIRE_ACCEPTANCE=1), or when HYPERGLASS_SKIP_ACCEPTANCE=1.
Always takes the testbed down at the end, whatever happened.
"""
import argparse, json, os, re, shlex, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTBED = os.environ.get("TESTBED") or os.path.join(ROOT, "..", "shared", "tools", "systemd-testbed", "testbed.sh")
CLIENT = "/usr/local/lib/hyperglass-acceptance/client.py"
DROPIN_DIR = "/etc/systemd/system/hyperglass.service.d"
WORKERS = 4
URL = "http://127.0.0.1:8001"
SCRATCH = os.path.join(ROOT, ".build")  # set by main from --scratch-path
# TESTBED_NAME from the environment lets parallel runs keep apart; the default is the suite's own.
ENV = dict(os.environ, TESTBED_NAME=os.environ.get("TESTBED_NAME") or "hyperglass-acceptance",
           TESTBED_PRIVATE_NETWORK="1", TESTBED_BIND_RO="")


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def log(text):
    print(f"acceptance: {text}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(argv, timeout=120, check_rc=True, **kw):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV, **kw)
    if check_rc and result.returncode != 0:
        raise Failure(f"{shlex.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def tb(*args, timeout=120, check_rc=True):
    return run([TESTBED, *args], timeout=timeout, check_rc=check_rc)


def guest(command, timeout=60, check_rc=True):
    """Runs a shell command inside the guest."""
    return tb("exec", "sh", "-c", command, timeout=timeout, check_rc=check_rc)


def show(*properties):
    out = guest(f"systemctl show -p {','.join(properties)} hyperglass").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def ctl_status():
    return json.loads(guest("hyperglassctl status --json").stdout)


def client(*args, timeout=60):
    out = guest(shlex.join(["python3", CLIENT, *args]), timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def wait_for(what, predicate, seconds, interval=0.2):
    """Polls predicate until it returns a true value; bounded in time (and so in count)."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise Failure(f"timed out after {seconds}s waiting for {what} (last: {last!r})")


def journal(since_cursor=None):
    return guest("journalctl -u hyperglass -o short --no-pager" + (f" --after-cursor='{since_cursor}'" if since_cursor else "")).stdout


def journal_cursor():
    out = guest("journalctl -u hyperglass -n 0 --show-cursor --no-pager", check_rc=False).stdout
    match = re.search(r"-- cursor: (\S+)", out)
    return match.group(1) if match else None


def worker_pids(status):
    return {w["id"]: w["pid"] for w in status["workers"] if w.get("pid")}


def hyperglass_processes():
    """Every process in the guest running one of our binaries, as 'pid args' lines."""
    out = guest("ps -eo pid=,args=").stdout
    return [line.strip() for line in out.splitlines() if "/usr/local/bin/hyperglass" in line]


def write_dropin(name, text):
    guest(f"mkdir -p {DROPIN_DIR} && cat > {DROPIN_DIR}/{name}.conf <<'EOF'\n[Service]\n{text}\nEOF\nsystemctl daemon-reload")


def remove_dropin(name):
    guest(f"rm -f {DROPIN_DIR}/{name}.conf && systemctl daemon-reload")


class Background:
    """A client running in the guest, started from the host; ended by its process group id."""

    def __init__(self, *args):
        self.process = subprocess.Popen([TESTBED, "exec", "python3", CLIENT, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)

    def first_line(self, seconds):
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=seconds):
            raise Failure("background client printed nothing")
        return self.process.stdout.readline()

    def result(self, seconds):
        try:
            out, err = self.process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.end()
            raise Failure("background client did not finish in time")
        lines = out.strip().splitlines()
        if not lines:
            raise Failure(f"background client printed no result: {err}")
        return json.loads(lines[-1])

    def end(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)


def start_service():
    started = time.monotonic()
    result = guest("systemctl start hyperglass", timeout=120, check_rc=False)
    check(result.returncode == 0, f"systemctl start failed: {result.stderr}\n{journal()[-3000:]}")
    return time.monotonic() - started


def assert_serving(count=WORKERS):
    props = show("ActiveState", "SubState", "StatusText")
    check(props["ActiveState"] == "active" and props["SubState"] == "running", f"unit not active (running): {props}")
    check(props["StatusText"] == f"{count}/{count} workers ready", f"StatusText is {props['StatusText']!r}")
    reply = client("get", URL + "/")
    check(reply.get("status") == 200, f"GET / failed: {reply}")


# ---- the tests, in order; they share one booted guest ------------------------------------------------

def test_installed_unit_loads():
    """`make install` put the units where systemd reads them, and systemd accepts them."""
    props = guest("systemctl show -p FragmentPath,LoadState,Type,NotifyAccess,WatchdogUSec,KillMode,"
                  "TimeoutStopUSec,RestartPreventExitStatus,ExecReload hyperglass").stdout
    check("FragmentPath=/usr/local/lib/systemd/system/hyperglass.service" in props, props)
    for expected in ["LoadState=loaded", "Type=notify", "NotifyAccess=main", "KillMode=mixed",
                     "TimeoutStopUSec=45s", "RestartPreventExitStatus=78", "path=/usr/local/bin/hyperglassctl"]:
        check(expected in props, f"{expected} not in\n{props}")
    verify = guest("systemd-analyze verify /usr/local/lib/systemd/system/hyperglass.service "
                   "/usr/local/lib/systemd/system/hyperglass.socket 2>&1", check_rc=False)
    check(verify.returncode == 0 and "hyperglass" not in verify.stdout, f"systemd-analyze verify:\n{verify.stdout}")
    check(guest("test ! -e /opt/swift && ! command -v swift", check_rc=False).returncode == 0,
          "a Swift toolchain is visible in the guest: the static-runtime check would prove nothing")
    # The example apps where config/*.conf expect them, the worker configurations as documentation.
    examples = sorted(os.listdir(os.path.join(ROOT, "config", "examples")))
    confs = sorted(f for f in os.listdir(os.path.join(ROOT, "config")) if f.endswith(".conf") and f != "supervisor.conf")
    missing = guest("for f in " + " ".join(f"/etc/hyperglass-supervisor/examples/{f}" for f in examples) + " "
                    + " ".join(f"/usr/local/share/doc/hyperglass/examples/{f}" for f in confs)
                    + "; do test -f $f || echo $f; done").stdout.split()
    check(not missing, f"make install did not install {missing}")
    for conf in confs:
        for path in re.findall(r"/etc/hyperglass-supervisor/examples/(\w+\.py)", open(os.path.join(ROOT, "config", conf)).read()):
            check(path in examples, f"config/{conf} names /etc/hyperglass-supervisor/examples/{path}, which is not installed")


def test_install_and_uninstall_keep_local_changes():
    """`make install` never overwrites /etc/hyperglass-supervisor files; `make uninstall` removes only unchanged ones."""
    stage = tempfile.mkdtemp(prefix="hyperglass-reinstall-")
    try:
        make = ["make", "--no-print-directory", "-s", f"DESTDIR={stage}", f"SCRATCH={SCRATCH}"]
        run(make + ["install"], cwd=ROOT)
        etc = os.path.join(stage, "etc", "hyperglass-supervisor")
        changed = [os.path.join(etc, "supervisor.conf"), os.path.join(etc, "examples", "asgi_app.py")]
        for path in changed:
            with open(path, "a") as f:
                f.write("# changed locally\n")
        again = run(make + ["install"], cwd=ROOT).stdout
        for path in changed:
            check(open(path).read().endswith("# changed locally\n"), f"make install overwrote {path}")
            check(f"kept {path}" in again, f"make install did not say it kept {path}:\n{again}")
        run(make + ["uninstall"], cwd=ROOT)
        left = sorted(os.path.join(d, f) for d, _, files in os.walk(stage) for f in files)
        check(left == sorted(changed), f"after uninstall, expected only the changed files, found {left}")
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def test_start_returns_when_ready():
    """`systemctl start` returns only once every worker sent READY=1; status shows the live STATUS=."""
    cursor = journal_cursor()
    took = start_service()
    # Right after start returns, with no waiting: every worker is ready already.
    status = ctl_status()
    supervisor = status["supervisor"]
    check(supervisor["ready"] == WORKERS and supervisor["desired"] == WORKERS, f"not all ready at start return: {status}")
    check(show("WatchdogUSec")["WatchdogUSec"] == "10s", "the supervisor runs without WatchdogSec=10s")
    assert_serving()
    text = guest("systemctl status hyperglass --no-pager", check_rc=False).stdout
    check("active (running)" in text and f'Status: "{WORKERS}/{WORKERS} workers ready"' in text, text)
    lines = journal(cursor).splitlines()
    ready = next((i for i, l in enumerate(lines) if f"{WORKERS}/{WORKERS} workers ready" in l), None)
    started = next((i for i, l in enumerate(lines) if "Started hyperglass.service" in l), None)
    check(ready is not None and started is not None and ready < started,
          "the pool was not ready before systemd considered the unit started:\n" + "\n".join(lines))
    return f"start took {took:.2f}s"


def test_journal_attributes_lines_to_workers():
    """journalctl -u hyperglass has the supervisor's lines and each worker's, tagged with its id and pid."""
    text = journal()
    status = ctl_status()
    for slot, pid in worker_pids(status).items():
        check(re.search(rf"hyperglass\[\d+\]: worker {slot} started \(pid {pid}\)", text),
              f"no supervisor line for worker {slot} (pid {pid})")
        check(re.search(rf"worker {slot}\[{pid}\]: ", text), f"no line from worker {slot} itself (pid {pid})")
    check("control socket at /run/hyperglass/control.sock" in text, "supervisor did not log its control socket")


def test_journal_fields_find_a_killed_worker():
    """`journalctl -u hyperglass WORKER_ID=1 EVENT=exited` finds a killed worker: its pid, REASON=crash,
    a warning priority; EVENT=restart follows for the same worker."""
    if show("ActiveState")["ActiveState"] != "active":
        start_service()  # when run alone (-k)
    # Past min_ready (3 s by default), or the kill would be a failed start rather than a crash.
    def settled():
        worker = next((w for w in ctl_status()["workers"] if w["id"] == 1), {})
        return worker.get("pid") if worker.get("state") == "ready" and worker.get("uptime_seconds", 0) >= 4 else None
    victim = wait_for("worker 1 ready for 4 s", settled, 15)
    guest(f"kill -KILL {victim}")

    def entries(match):
        out = guest(f"journalctl -u hyperglass {match} -o json --no-pager", check_rc=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    exited = wait_for("EVENT=exited for the killed worker",
                      lambda: [e for e in entries("WORKER_ID=1 EVENT=exited") if e.get("WORKER_PID") == str(victim)] or None, 10)[-1]
    check(exited.get("REASON") == "crash", f"REASON is {exited.get('REASON')!r}: {exited}")
    check(exited.get("PRIORITY") == "4", f"PRIORITY is {exited.get('PRIORITY')!r}")
    check(exited.get("SYSLOG_IDENTIFIER") == "hyperglass", f"SYSLOG_IDENTIFIER is {exited.get('SYSLOG_IDENTIFIER')!r}")
    check(f"pid {victim}" in exited.get("MESSAGE", ""), f"MESSAGE: {exited.get('MESSAGE')!r}")
    wait_for("EVENT=restart REASON=crash for worker 1",
             lambda: entries("WORKER_ID=1 EVENT=restart REASON=crash") or None, 10)
    # Another worker's events are not in worker 1's view.
    check(all(e.get("WORKER_ID") == "1" for e in entries("WORKER_ID=1")), "WORKER_ID=1 matched other workers' entries")
    wait_for(f"StatusText {WORKERS}/{WORKERS}", lambda: show("StatusText")["StatusText"] == f"{WORKERS}/{WORKERS} workers ready", 10)
    # The same journal line reads as before in the plain view.
    check(re.search(rf"hyperglass\[\d+\]: worker 1 \(pid {victim}\) exited unexpectedly", journal()), "no plain line for the exit")


def test_scale_through_runtime_directory_socket():
    """`hyperglassctl workers N` reaches the supervisor at $RUNTIME_DIRECTORY/control.sock; STATUS= follows."""
    check(guest("test -S /run/hyperglass/control.sock", check_rc=False).returncode == 0, "no /run/hyperglass/control.sock")
    guest("hyperglassctl workers 6 --wait")
    wait_for("StatusText 6/6", lambda: show("StatusText")["StatusText"] == "6/6 workers ready", 10)
    check(len(worker_pids(ctl_status())) == 6, "hyperglassctl status does not list 6 workers")
    cgroup = guest("systemctl status hyperglass --no-pager", check_rc=False).stdout
    check(cgroup.count("/usr/local/bin/hyperglass-worker") == 6, f"the unit's cgroup does not hold 6 workers:\n{cgroup}")
    guest(f"hyperglassctl workers {WORKERS} --wait")
    wait_for(f"StatusText {WORKERS}/{WORKERS}", lambda: show("StatusText")["StatusText"] == f"{WORKERS}/{WORKERS} workers ready", 10)
    check(len(worker_pids(ctl_status())) == WORKERS, f"did not scale back to {WORKERS}")


def test_killed_workers_are_replaced():
    """SIGKILL to workers: the supervisor replaces them; the unit stays active (running), not restarted."""
    before = show("MainPID", "NRestarts")
    old = worker_pids(ctl_status())
    victims = [old[0], old[2]]
    guest("kill -KILL " + " ".join(map(str, victims)))

    def replaced():
        now = worker_pids(ctl_status())
        return now if len(now) == WORKERS and not set(victims) & set(now.values()) and \
            show("StatusText")["StatusText"] == f"{WORKERS}/{WORKERS} workers ready" else None
    now = wait_for("replacements ready", replaced, 10)
    check(now[1] == old[1] and now[3] == old[3], "workers that were not killed were touched")
    after = show("MainPID", "NRestarts")
    check(after == before, f"the unit itself restarted: {before} -> {after}")
    assert_serving()
    check("active (running)" in guest("systemctl status hyperglass --no-pager", check_rc=False).stdout, "not active (running)")


def test_check_config_warns_about_short_stop_timeout():
    """`hyperglass check-config` compares the unit's TimeoutStopSec with graceful_timeout."""
    result = guest("hyperglass-supervisor check-config 2>&1 >/dev/null")
    check("TimeoutStopSec" not in result.stdout, f"warned about the shipped unit: {result.stdout}")
    write_dropin("short-stop", "TimeoutStopSec=20s")
    try:
        result = guest("hyperglass-supervisor check-config 2>&1 >/dev/null")
        check(result.returncode == 0 and "TimeoutStopSec=20s, not longer than graceful_timeout" in result.stdout,
              f"no warning for TimeoutStopSec=20s: {result.stdout!r}")
    finally:
        remove_dropin("short-stop")


def test_watchdog_restarts_a_hung_supervisor():
    """SIGSTOP the supervisor: its WATCHDOG=1 pings stop, systemd kills it and starts it again."""
    before = show("MainPID", "NRestarts")
    cursor = journal_cursor()
    stopped_at = time.monotonic()
    guest(f"kill -STOP {before['MainPID']}")

    def restarted():
        props = show("MainPID", "NRestarts", "ActiveState", "StatusText")
        return props if int(props["NRestarts"]) > int(before["NRestarts"]) and props["MainPID"] not in ("0", before["MainPID"]) \
            and props["ActiveState"] == "active" and props["StatusText"] == f"{WORKERS}/{WORKERS} workers ready" else None
    after = wait_for("a watchdog restart", restarted, 40, interval=0.5)
    took = time.monotonic() - stopped_at
    text = journal(cursor)
    check("Watchdog timeout" in text, "journal does not show systemd's watchdog timeout:\n" + text[-2000:])
    # The last ping may have come up to WatchdogSec/2 before SIGSTOP; then RestartSec=1s.
    check(took >= 5, f"restarted after {took:.1f}s, before WatchdogSec=10s could have run out")
    pids = [line.split()[0] for line in hyperglass_processes()]
    check(before["MainPID"] not in pids, "the hung supervisor is still there")
    assert_serving()
    return f"restart {took:.1f}s after SIGSTOP, NRestarts {before['NRestarts']} -> {after['NRestarts']}"


def test_never_ready_pool_stops_watchdog_pings():
    """A pool that cannot become ready again makes the supervisor stop pinging, so systemd restarts it.

    watchdog_requires_ready (default on) with unready_timeout=3s here (60 s by default) and, in a test
    drop-in, WatchdogSec=4s (10 s in the unit): after the workers die and cannot come back, the supervisor
    withholds WATCHDOG=1 from about 3 s on, and systemd's watchdog fires at most 4 s after the last ping.
    Readiness is notify: with exec a worker that exits at once would count as ready for a moment."""
    unready, watchdog = 3, 4
    guest("mkdir -p /usr/local/lib/hyperglass-acceptance && cat > /usr/local/lib/hyperglass-acceptance/flaky-worker <<'EOF'\n"
          "#!/bin/sh\n[ -e /run/hyperglass-acceptance-broken ] && exit 1\nexec /usr/local/bin/hyperglass-worker \"$@\"\nEOF\n"
          "chmod 755 /usr/local/lib/hyperglass-acceptance/flaky-worker")
    write_dropin("flaky", f"WatchdogSec={watchdog}s\n"
                          "Environment=HYPERGLASS_COMMAND=/usr/local/lib/hyperglass-acceptance/flaky-worker "
                          "HYPERGLASS_READINESS=notify HYPERGLASS_CRASH_LOOP=keep-trying HYPERGLASS_BACKOFF_MAX=2s "
                          f"HYPERGLASS_WATCHDOG_REQUIRES_READY=true HYPERGLASS_UNREADY_TIMEOUT={unready}s")
    try:
        guest("rm -f /run/hyperglass-acceptance-broken; systemctl restart hyperglass", timeout=60)
        before = show("MainPID", "NRestarts", "WatchdogUSec")
        check(before["WatchdogUSec"] == f"{watchdog}s", f"the test drop-in's WatchdogSec did not apply: {before}")
        # Healthy for longer than unready_timeout + WatchdogSec: a ready pool keeps its pings going.
        time.sleep(unready + watchdog + 1)
        steady = show("MainPID", "NRestarts", "ActiveState")
        check(steady["MainPID"] == before["MainPID"] and steady["NRestarts"] == before["NRestarts"]
              and steady["ActiveState"] == "active", f"a ready pool was restarted: {before} -> {steady}")
        cursor = journal_cursor()
        guest("touch /run/hyperglass-acceptance-broken")
        broken_at = time.monotonic()
        guest("pkill -KILL -f '^/usr/local/bin/hyperglass-worker'", check_rc=False)

        def restarted():
            props = show("MainPID", "NRestarts")
            return props if int(props["NRestarts"]) > int(before["NRestarts"]) else None
        after = wait_for("a watchdog restart of a pool that never gets ready", restarted, 60, interval=0.5)
        took = time.monotonic() - broken_at
        text = journal(cursor)
        check("withholding systemd's watchdog ping" in text,
              "the supervisor did not say it withholds the watchdog ping:\n" + text[-3000:])
        check("Watchdog timeout" in text, "restarted, but not by the watchdog:\n" + text[-3000:])
        check(took >= unready, f"restarted {took:.1f}s after the pool broke, before unready_timeout={unready}s")
        check(after["MainPID"] != before["MainPID"], f"same MainPID after the restart: {after}")
    finally:
        guest("rm -f /run/hyperglass-acceptance-broken")
        remove_dropin("flaky")
        guest("systemctl restart hyperglass", timeout=120, check_rc=False)
    assert_serving()
    return (f"restart {took:.1f}s after the pool broke (unready_timeout={unready}s, WatchdogSec={watchdog}s), "
            f"NRestarts {before['NRestarts']} -> {after['NRestarts']}")


def test_reload_rolls_every_worker_without_failed_requests():
    """`systemctl reload` rolls every worker with 0 failed requests and returns when the roll is done;
    a broken config makes the reload fail visibly while the old workers keep serving."""
    guest("printf '[supervisor]\\nworkers = %d\\n' > /etc/hyperglass-supervisor/acceptance.conf" % WORKERS)
    write_dropin("reload", "Environment=HYPERGLASS_CONFIG=/etc/hyperglass-supervisor/acceptance.conf")
    stop_file = "/run/hyperglass-acceptance-load-done"
    load = None
    try:
        guest(f"rm -f {stop_file}; systemctl restart hyperglass", timeout=90)
        old = worker_pids(ctl_status())
        load = Background("until-file", URL + "/whoami", stop_file)
        time.sleep(1)
        started = time.monotonic()
        guest("systemctl reload hyperglass", timeout=120)
        took = time.monotonic() - started
        # No polling: when reload returns, every slot already has a new, ready worker.
        new = worker_pids(ctl_status())
        check(len(new) == WORKERS and not set(old.values()) & set(new.values()),
              f"not every worker was replaced when reload returned: {old} -> {new}")
        check(show("StatusText")["StatusText"] == f"{WORKERS}/{WORKERS} workers ready", "not ready after reload")

        # A broken configuration: the reload fails, nothing changes, the pool keeps serving.
        guest("printf '[supervisor]\\nworkers = many\\n' > /etc/hyperglass-supervisor/acceptance.conf")
        cursor = journal_cursor()
        failed = guest("systemctl reload hyperglass", timeout=120, check_rc=False)
        check(failed.returncode != 0, "systemctl reload succeeded with a broken config")
        text = journal(cursor)
        check("acceptance.conf:2" in text, f"the reload failure does not name the bad line:\n{text}")
        check(worker_pids(ctl_status()) == new, "workers changed although the reload failed")
        props = show("ActiveState", "SubState")
        check(props == {"ActiveState": "active", "SubState": "running"}, f"after a failed reload: {props}")
        time.sleep(0.5)
        guest(f"touch {stop_file}")
        result = load.result(30)
        check(result["ok"] > 0 and result["failed"] == 0, f"requests failed during the reloads: {result}")
        # Both generations served it. Not "every old worker": the kernel gives each connection to whichever
        # worker accepts first, and a parallel roll retires the old ones within ~3 s (one went unseen once).
        check(set(old.values()) & set(result["pids"]) and set(new.values()) & set(result["pids"]),
              f"the client was not served by both generations: old {sorted(old.values())}, new {sorted(new.values())}, "
              f"served by {sorted(result['pids'])}")
        return f"reload took {took:.2f}s; {result['ok']} requests, 0 failed"
    finally:
        guest(f"touch {stop_file}")
        if load:
            load.end()
        remove_dropin("reload")
        guest("rm -f /etc/hyperglass-supervisor/acceptance.conf; systemctl restart hyperglass", timeout=90, check_rc=False)


def test_long_reload_outlasts_the_start_timeout():
    """systemd times reloads out at TimeoutStartSec=. A roll whose new workers settle for min_ready (6 s here;
    they settle side by side, max_surge 25 %) takes over 6 s; with TimeoutStartSec=4s the reload still
    succeeds, because each batch of starts sends EXTEND_TIMEOUT_USEC (before: the reload job failed at 4 s
    while the roll went on). ExecReload's `reload --wait` writes a line per step to the journal."""
    guest("printf '[supervisor]\\nworkers = %d\\n[worker]\\nmin_ready = 6s\\n' > /etc/hyperglass-supervisor/acceptance.conf" % WORKERS)
    write_dropin("slow-reload", "Environment=HYPERGLASS_CONFIG=/etc/hyperglass-supervisor/acceptance.conf\nTimeoutStartSec=4s")
    try:
        guest("systemctl restart hyperglass", timeout=90)
        old = worker_pids(ctl_status())
        cursor = journal_cursor()
        started = time.monotonic()
        result = guest("systemctl reload hyperglass", timeout=120, check_rc=False)
        took = time.monotonic() - started
        check(result.returncode == 0, f"systemctl reload failed after {took:.1f}s: {result.stderr}\n{journal()[-2000:]}")
        steps = re.findall(r"hyperglassctl\[\d+\]: (rolling: .*)", journal(cursor))
        check(len(steps) >= 3 and steps[0].startswith(f"rolling: 0/{WORKERS} new"), f"no roll progress in the journal: {steps}")
        check(took > 4, f"the roll took only {took:.1f}s: the test does not outlast TimeoutStartSec=4s")
        new = worker_pids(ctl_status())
        check(len(new) == WORKERS and not set(old.values()) & set(new.values()), f"not every worker replaced: {old} -> {new}")
        props = show("ActiveState", "SubState")
        check(props == {"ActiveState": "active", "SubState": "running"}, f"after the long reload: {props}")
        return f"reload took {took:.1f}s with TimeoutStartSec=4s"
    finally:
        remove_dropin("slow-reload")
        guest("rm -f /etc/hyperglass-supervisor/acceptance.conf; systemctl restart hyperglass", timeout=90, check_rc=False)


def test_socket_activation_restart_refuses_nothing():
    """With hyperglass.socket, `systemctl restart hyperglass` refuses no connection: they wait in the backlog."""
    guest("systemctl stop hyperglass && systemctl start hyperglass.socket", timeout=90)
    try:
        cursor = journal_cursor()
        start_service()
        check("(from systemd socket activation)" in journal(cursor), "the supervisor did not take its listener from the socket unit")
        load = Background("load", URL + "/whoami", "6")
        time.sleep(1)
        guest("systemctl restart hyperglass", timeout=90)
        result = load.result(30)
        check(result["ok"] > 0, f"no request succeeded across the restart: {result}")
        assert_serving()
        check(result["failed"] == 0, f"requests failed across the restart: {result}")
        return f"{result['ok']} requests across a restart, 0 failed"
    finally:
        guest("systemctl stop hyperglass hyperglass.socket", timeout=90, check_rc=False)


def test_upgrade_in_place_keeps_pid_and_workers():
    """`hyperglassctl upgrade --wait` under load, alternating the installed binary and a copy: the same MainPID
    and workers, NRestarts 0, 0 failed requests; a binary that is not a hyperglass is refused and changes nothing."""
    start_service()
    binary = "/usr/local/bin/hyperglass-supervisor"
    # Beside the installed one: the default worker command is the bundled worker beside the binary.
    copy = "/usr/local/bin/hyperglass-supervisor-b"
    guest(f"cp {binary} {copy}")
    pid, workers = show("MainPID")["MainPID"], worker_pids(ctl_status())
    restarts = show("NRestarts")["NRestarts"]
    stop_file = "/run/hyperglass-acceptance-upgrade-done"
    load = None
    try:
        guest(f"rm -f {stop_file}")
        load = Background("until-file", URL + "/whoami", stop_file)
        time.sleep(0.5)
        took = []
        for target in (copy, binary, copy, binary):
            done = guest(f"hyperglassctl upgrade --wait {target}", timeout=60, check_rc=False)
            check(done.returncode == 0 and "upgraded from" in done.stdout, f"upgrade to {target}: {done.stdout}{done.stderr}")
            took.append(re.search(r" in (\d+) ms", done.stdout).group(1))
            check(show("MainPID")["MainPID"] == pid, f"MainPID changed in the upgrade to {target}")
        refused = guest("printf 'not a program' > /tmp/garbage && chmod +x /tmp/garbage && hyperglassctl upgrade --wait /tmp/garbage",
                        check_rc=False)
        check(refused.returncode == 1 and "nothing changed" in refused.stderr, f"a garbage binary was not refused: {refused.stderr}")
        time.sleep(0.5)
        guest(f"touch {stop_file}")
        result = load.result(30)
        check(worker_pids(ctl_status()) == workers, f"workers changed across the upgrades: {workers} -> {worker_pids(ctl_status())}")
        check(show("NRestarts")["NRestarts"] == restarts, "the service restarted")
        check(result["ok"] > 0 and result["failed"] == 0, f"requests failed during the upgrades: {result}")
        assert_serving()
        return f"4 upgrades in {'/'.join(took)} ms, MainPID {pid} and workers kept; {result['ok']} requests, 0 failed"
    finally:
        guest(f"touch {stop_file}", check_rc=False)
        if load:
            load.end()
        guest(f"rm -f {copy} /tmp/garbage", check_rc=False)


def test_stop_drains():
    """`systemctl stop`: WebSocket closed with 1001, in-flight request completes, Result=success, nothing left."""
    start_service()
    ws = Background("ws", "127.0.0.1", "8001", "60")
    slow = None
    try:
        check('"open"' in ws.first_line(10), "the WebSocket did not open")
        slow = Background("get", URL + "/sleep?ms=2500")
        time.sleep(0.7)  # the request is in a worker now
        started = time.monotonic()
        guest("systemctl stop hyperglass", timeout=90)
        took = time.monotonic() - started
        ws_result = ws.result(20)
        slow_result = slow.result(20)
    finally:
        ws.end()
        if slow:
            slow.end()
    check(ws_result["echo"] and ws_result["close_code"] == 1001, f"WebSocket: {ws_result}")
    check(slow_result.get("status") == 200, f"the in-flight request did not complete: {slow_result}")
    props = show("ActiveState", "Result", "MainPID")
    check(props == {"ActiveState": "inactive", "Result": "success", "MainPID": "0"}, f"after stop: {props}")
    check(hyperglass_processes() == [], f"processes left: {hyperglass_processes()}")
    check(guest("test -e /run/hyperglass", check_rc=False).returncode != 0, "/run/hyperglass was not removed")
    return f"stop took {took:.2f}s with a 2.5 s request in flight"


def test_strays_end_with_their_worker():
    """Delegate=yes: each worker in its own cgroup; a helper that setsid()s and ignores SIGTERM is gone after each
    of 10 restarts and after `systemctl stop`, and the address binds again at once."""
    tb("copy-in", os.path.join(ROOT, "Tests", "IntegrationTests", "Fixtures", "strayworker.py"), "/usr/local/lib/hyperglass-acceptance/strayworker.py")
    write_dropin("strays", "Environment=HYPERGLASS_WORKERS=2 HYPERGLASS_READINESS=accepting HYPERGLASS_MIN_READY=0 "
                 "HYPERGLASS_GRACEFUL_TIMEOUT=3s \"HYPERGLASS_COMMAND=/usr/local/lib/hyperglass-acceptance/strayworker.py --record /run/strays.rec\"")
    guest("rm -f /run/strays.rec")

    def alive():
        text = guest("cat /run/strays.rec 2>/dev/null", check_rc=False).stdout
        pids = [line.split()[0] for line in text.splitlines() if line.endswith(" stray")]
        return pids, [pid for pid in pids if guest(f"test -d /proc/{pid}", check_rc=False).returncode == 0]
    try:
        start_service()
        tree = guest("systemd-cgls --no-pager -u hyperglass.service", check_rc=False).stdout
        check("supervisor" in tree and "worker-0." in tree and "worker-1." in tree, f"no cgroup per worker:\n{tree}\n{journal()[-2000:]}")
        for _ in range(10):
            guest("hyperglassctl restart all --wait", timeout=60)
        recorded, living = alive()
        check(len(recorded) == 22 and len(living) == 2, f"{len(recorded)} helpers started, alive: {living} (want only the 2 live workers')")
        # Starting the service also starts hyperglass.socket (the service Wants= its socket unit), which
        # holds 8001 itself: stop both, then nothing of ours may hold the address.
        guest("systemctl stop hyperglass hyperglass.socket", timeout=90)
        recorded, living = alive()
        check(living == [], f"helpers left after stop: {living}")
        # SO_REUSEADDR as every server (the supervisor too) binds: earlier tests' connections may linger in
        # TIME_WAIT on 8001; only a listening socket would still refuse the bind.
        bound = guest("python3 -c 'import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                      "s.bind((\"127.0.0.1\", 8001))'", check_rc=False)
        check(bound.returncode == 0, f"127.0.0.1:8001 does not bind after stop: {bound.stderr}")
    finally:
        remove_dropin("strays")
        guest("systemctl stop hyperglass; rm -f /run/strays.rec", check_rc=False)
    return "22 helpers started over 10 restarts; 2 alive (the live workers'), 0 after stop"


def test_config_error_fails_without_restart_loop():
    """A config error: start fails, status shows exit 78 and the message, no restart loop."""
    guest("printf '[supervisor]\\nwrokers = 4\\n' > /etc/hyperglass-supervisor/broken.conf")
    write_dropin("broken", "Environment=HYPERGLASS_CONFIG=/etc/hyperglass-supervisor/broken.conf")
    try:
        result = guest("systemctl start hyperglass", timeout=60, check_rc=False)
        check(result.returncode != 0, "systemctl start succeeded with a broken config")
        time.sleep(2.5)  # longer than RestartSec=1s: a restart loop would have shown by now
        props = show("ActiveState", "Result", "ExecMainStatus", "NRestarts")
        check(props == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "78", "NRestarts": "0"},
              f"after a config error: {props}")
        text = guest("systemctl status hyperglass --no-pager -l -n 20", check_rc=False).stdout
        check("status=78" in text and "broken.conf:2" in text and "wrokers" in text, f"status lacks exit 78 and the message:\n{text}")
    finally:
        remove_dropin("broken")
        guest("rm -f /etc/hyperglass-supervisor/broken.conf; systemctl reset-failed hyperglass", check_rc=False)


TESTS = [
    test_installed_unit_loads,
    test_install_and_uninstall_keep_local_changes,
    test_start_returns_when_ready,
    test_journal_attributes_lines_to_workers,
    test_journal_fields_find_a_killed_worker,
    test_scale_through_runtime_directory_socket,
    test_killed_workers_are_replaced,
    test_check_config_warns_about_short_stop_timeout,
    test_watchdog_restarts_a_hung_supervisor,
    test_never_ready_pool_stops_watchdog_pings,
    test_reload_rolls_every_worker_without_failed_requests,
    test_long_reload_outlasts_the_start_timeout,
    test_socket_activation_restart_refuses_nothing,
    test_upgrade_in_place_keeps_pid_and_workers,
    test_stop_drains,
    test_strays_end_with_their_worker,
    test_config_error_fails_without_restart_loop,
]


# ---- set-up ----------------------------------------------------------------------------------------

def build_and_stage(scratch, stage):
    # The binaries `make release` ships: static Swift runtime and the Makefile's link choices.
    log(f"building release binaries (make release) in {scratch}")
    run(["make", "--no-print-directory", "-s", "release", f"SCRATCH={scratch}"], timeout=1800, cwd=ROOT)
    run(["make", "--no-print-directory", "-s", "install", f"DESTDIR={stage}", f"SCRATCH={scratch}"], cwd=ROOT)


def install_into_guest(stage):
    tb("copy-in", os.path.join(stage, "usr", "local"), "/usr/local")
    if os.path.isdir(os.path.join(stage, "etc", "hyperglass-supervisor")):
        tb("copy-in", os.path.join(stage, "etc", "hyperglass-supervisor"), "/etc/hyperglass-supervisor")
    tb("copy-in", os.path.join(ROOT, "Tests", "Acceptance", "guest_client.py"), CLIENT)
    # A real Debian system has /etc/hosts; the testbed's minimal root file system does not, and
    # the default bind address is "localhost".
    guest("test -e /etc/hosts || printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts")
    # A fixed pool size whatever the machine; notify readiness so "start returns when ready" means something.
    write_dropin("acceptance", f"Environment=HYPERGLASS_WORKERS={WORKERS} HYPERGLASS_READINESS=notify")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch-path", default=".build")
    parser.add_argument("-k", dest="only", help="run only tests whose name contains this")
    options = parser.parse_args()
    scratch = os.path.join(ROOT, options.scratch_path) if not os.path.isabs(options.scratch_path) else options.scratch_path
    global SCRATCH
    SCRATCH = scratch

    if os.environ.get("HYPERGLASS_SKIP_ACCEPTANCE") == "1":
        log("SKIPPED: HYPERGLASS_SKIP_ACCEPTANCE=1")
        return 0
    if os.geteuid() != 0:
        log("SKIPPED: booting systemd in a container needs root (run `sudo make acceptance`)")
        return 0
    if not os.access(TESTBED, os.X_OK):
        log(f"SKIPPED: no systemd testbed at {os.path.normpath(TESTBED)} (set TESTBED=/path/to/testbed.sh)")
        return 0

    began = time.monotonic()
    stage = tempfile.mkdtemp(prefix="hyperglass-stage-")
    results = []

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    try:
        build_and_stage(scratch, stage)
        tb("down", timeout=120, check_rc=False)  # a leftover instance may have other settings
        log("booting systemd 252 in a container (testbed.sh up)")
        booted = tb("up", timeout=600, check_rc=False)
        if booted.returncode != 0:
            message = f"testbed.sh up failed (exit {booted.returncode}); the testbed cannot run here:\n{booted.stderr[-2000:]}"
            if os.environ.get("HYPERGLASS_REQUIRE_ACCEPTANCE") == "1":
                raise Failure(message)
            log("SKIPPED: " + message + "\n(HYPERGLASS_REQUIRE_ACCEPTANCE=1 makes this a failure)")
            return 0
        install_into_guest(stage)
        log(f"set-up took {time.monotonic() - began:.1f}s")
        for test in TESTS:
            if options.only and options.only not in test.__name__:
                continue
            started = time.monotonic()
            try:
                note = test()
                outcome = "PASS"
            except Skip as skip:
                outcome, note = "SKIP", str(skip)
            except (Failure, subprocess.TimeoutExpired, KeyError, ValueError, json.JSONDecodeError) as error:
                outcome, note = "FAIL", f"{type(error).__name__}: {error}"
            took = time.monotonic() - started
            results.append((test.__name__, outcome))
            log(f"{outcome} {test.__name__} ({took:.1f}s){': ' + note if note else ''}")
            if outcome == "FAIL":
                tail = guest("journalctl -u hyperglass -n 30 --no-pager", check_rc=False).stdout
                print(tail, flush=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        tb("down", timeout=180, check_rc=False)
    failed = [name for name, outcome in results if outcome == "FAIL"]
    log(f"{len(results) - len(failed)}/{len(results)} passed or skipped, {len(failed)} failed, "
        f"{time.monotonic() - began:.1f}s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
