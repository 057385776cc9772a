"""Round three: the surfaces that landed with the in-place upgrade, parallel rolls and their progress,
attacked as a hostile client or an unlucky operator would."""
import json, os, shutil, signal, tempfile, time

import support
from support import Supervisor, fail, wait_for


def _script(directory, name, body):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for this purpose
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _pids_in(path):
    try:
        return [int(p) for p in open(path).read().split()]
    except (OSError, ValueError):
        return []


def _end_started_supervisor(process):
    """Ends a supervisor this module started itself (not through support.Supervisor), its workers first, by pid."""
    for child in support.child_pids(process.pid):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.kill()
    process.wait(5)


def _running(s, timeout=15):
    """Waits until the supervisor says it is running (the pool ready, no roll): upgrades are admitted then."""
    state = lambda: (s.request({"v": 1, "cmd": "status"}).get("supervisor") or {}).get("state")
    if not wait_for(lambda: state() == "running", timeout):
        fail("the supervisor did not reach 'running'", state=state(), log=s.log_text())


def upgrade_check_that_hangs_silently():
    """`upgrade PATH` where PATH closes its output and hangs (refused as hung at its 5 s bound), or exits
    leaving a child holding the output (judged at once by what it wrote): the loop answers throughout, and
    nothing it started lives on."""
    s = Supervisor(workers=1)
    scratch = tempfile.mkdtemp(prefix="hg-upgrade-check-")
    pids = os.path.join(scratch, "pids")
    leftovers = []
    try:
        _running(s)
        cases = {
            "closes its output and sleeps": _script(scratch, "closer", f"echo $$ >> {pids}\nexec >&- 2>&-\nexec sleep 60\n"),
            "leaves a child holding its output": _script(scratch, "forker", f"sleep 60 &\necho $! >> {pids}\necho 'hyperglass 9 can take over'\nexit 0\n"),
        }
        figures = {}
        for name, path in cases.items():
            start = time.monotonic()
            reply = s.request({"v": 1, "cmd": "upgrade", "path": path}, timeout=20)
            took = time.monotonic() - start
            ping_start = time.monotonic()
            ping = s.request({"cmd": "ping"}, timeout=3)
            figures[name] = {"reply": reply, "seconds": round(took, 2), "ping_seconds": round(time.monotonic() - ping_start, 3)}
            # A check that exits is judged by what it wrote at once, whoever still holds its output; one that
            # neither exits nor closes its output is refused as hung at the 5 s bound.
            expected = "did not answer" if name == "closes its output and sleeps" else "refused to take over"
            if reply.get("ok") is not False or expected not in reply.get("error", ""):
                fail(f"an upgrade to a binary that {name} was not refused ({expected})", **figures)
            if took > 8:
                fail(f"an upgrade to a binary that {name} held the control loop for {took:.1f} s (bound 5 s)", **figures)
            if ping.get("ok") is not True:
                fail(f"after an upgrade to a binary that {name}, ping was not answered", **figures)
        leftovers = _pids_in(pids)
        # SIGKILLed, a process is gone once the scheduler runs it: a moment on a loaded machine, not at once.
        wait_for(lambda: not any(_alive(pid) for pid in leftovers), 3)
        alive = [pid for pid in leftovers if _alive(pid)]
        figures["left_running"] = alive
        if not leftovers or alive:
            fail("what the refused checks started still runs (or never ran)", **figures)
        if s.process.poll() is not None or s.request({"cmd": "status"}).get("ok") is not True:
            fail("the supervisor did not survive", **figures)
        print(json.dumps(figures))
    finally:
        for pid in _pids_in(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(scratch, ignore_errors=True)
        s.stop()


def upgrade_to_impostor_binary():
    """`upgrade PATH` where PATH is a script that says "can take over" in garbage (with terminal escapes),
    a directory, or is asked for by a read-only control_group member: each refused with a reason free of
    control characters; the supervisor keeps its pid and its workers and answers."""
    s = Supervisor(workers=2)
    scratch = tempfile.mkdtemp(prefix="hg-upgrade-impostor-")
    os.chmod(scratch, 0o755)
    try:
        _running(s)
        workers = sorted(s.children())
        garbage = _script(scratch, "garbage", "printf 'hyperglass \\033[2J\\r\\nevil can take over x\\n'\nhead -c 100000 /dev/zero | tr '\\0' A\n"
                          "printf '\\nhyperglass 1\\033]0;pwn\\007 can take over state version 2\\n'\nsleep 0.2\n")
        wrong_state = _script(scratch, "wrong_state", "echo 'hyperglass 9.9 can take over state version 99'\n")
        cases = {"garbage saying 'can take over'": ({"v": 1, "cmd": "upgrade", "path": garbage}, None, "refused to take over"),
                 "a yes for another state version": ({"v": 1, "cmd": "upgrade", "path": wrong_state}, None, "refused to take over"),
                 "a directory": ({"v": 1, "cmd": "upgrade", "path": scratch}, None, "refused to take over"),
                 "a read-only member": ({"v": 1, "cmd": "upgrade", "path": wrong_state}, support.READER, "")}
        figures = {}
        for name, (message, user, words) in cases.items():
            reply = s.request(message, timeout=10, as_user=user) or {}
            figures[name] = reply
            error = reply.get("error", "")
            if reply.get("ok") is not False or words not in error or any(ord(c) < 0x20 for c in error):
                fail(f"an upgrade to {name} was not refused cleanly", **figures)
            if s.process.poll() is not None or not wait_for(lambda: s.request({"cmd": "ping"}, timeout=1).get("ok") is True, 3):
                fail(f"after an upgrade to {name} the supervisor is gone", **figures, log=s.log_text())
        status = s.request({"v": 1, "cmd": "status"})
        figures["pid"] = (status.get("supervisor") or {}).get("pid")
        if figures["pid"] != s.pid or sorted(s.children()) != workers:
            fail("the supervisor's pid or its workers changed", **figures, workers_before=workers, workers_after=sorted(s.children()))
        if "upgrading in place" in s.log_text():
            fail("the log says an upgrade was begun", **figures, log=s.log_text())
        print(json.dumps(figures))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        s.stop()


def metrics_probe_at_emfile_sends_late():
    """At EMFILE, a probe whose request comes 300 ms after its connection (a loaded kubelet, or the
    flaky `metrics_emfile` run) is answered: the accept loop must not evict the connection it has just
    taken for a newcomer that does not exist (accept() says EMFILE even with nothing pending)."""
    import socket
    from round_two import _probe
    port = support.free_port()
    s = Supervisor(nofile=48, extra=["--metrics-bind", f"127.0.0.1:{port}"])
    held = []
    try:
        if not wait_for(lambda: _probe(port, "/livez")[0] == 200, 10):
            fail("/livez did not answer at start", log=s.log_text())
        held += support.exhaust_fds(s)  # control clients until the supervisor is out of fds
        time.sleep(0.3)
        results = []
        for _ in range(5):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
                    time.sleep(0.3)
                    c.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.29\r\n\r\n")
                    data = c.recv(4096)
                results.append(data.split(b"\r\n")[0].decode(errors="replace") if data else "closed without an answer")
            except OSError as error:
                results.append(repr(error))
        figures = {"control_clients": len(held), "late_probes": results, "fds": len(os.listdir(f"/proc/{s.pid}/fd"))}
        if any(not r.startswith("HTTP/1.1 200") for r in results):
            fail("a probe that sent its request 300 ms after connecting was not answered at EMFILE", **figures)
        print(json.dumps(figures))
    finally:
        for c in held:
            c.close()
        s.stop()



def count_wait_during_crash_loop():
    """An operator's `workers 3 --wait` while the workers crash-loop gets an answer at once (exit 1, the
    slot and its last failure), not a 15-minute wait; `restart all --wait` does not claim that a worker
    which never ran "keeps serving"."""
    s = Supervisor(workers=2, worker_args=["--exit", "3"])
    try:
        state = lambda: (s.request({"v": 1, "cmd": "status"}).get("supervisor") or {}).get("state")
        if not wait_for(lambda: state() == "crash-looping", 40):
            fail("the pool did not reach 'crash-looping'", state=state(), log=s.log_text())
        start = time.monotonic()
        reply = s.request({"v": 1, "cmd": "workers", "set": 3, "wait": True}, timeout=20)
        took = time.monotonic() - start
        figures = {"workers_wait": reply, "seconds": round(took, 2)}
        if reply.get("ok") is not False or "crash-looping" not in reply.get("error", "") or took > 5:
            fail("workers 3 --wait during a crash loop was not answered at once with the reason", **figures)
        restart = s.request({"v": 1, "cmd": "restart", "worker": "all", "wait": True}, timeout=20)
        figures["restart_wait"] = restart
        if restart.get("ok") is not False or "keeps serving" in restart.get("error", ""):
            fail("restart all --wait in a crash loop claimed a previous worker keeps serving", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def ctl_during_prestart():
    """`hyperglassctl status` while a long `prestart` runs: the control socket is not open yet, and the
    message says why it may be missing instead of only asking whether hyperglass runs."""
    import subprocess
    directory = tempfile.mkdtemp(prefix="hg-early-ctl-")
    os.chmod(directory, 0o755)
    control = os.path.join(directory, "control.sock")
    argv = [os.path.join(support.PRODUCTS, "hyperglass"), "start", "--bind", f"127.0.0.1:{support.free_port()}", "--control-socket", control,
            "--workers", "1", "--prestart", "/bin/sleep 30", "--", support.TESTWORKER]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        ctl = subprocess.run([os.path.join(support.PRODUCTS, "hyperglassctl"), "--socket", control, "status"],
                             capture_output=True, text=True, timeout=10)
        figures = {"exit": ctl.returncode, "stderr": ctl.stderr.strip()}
        if process.poll() is not None:
            fail("the supervisor did not keep running its prestart", **figures)
        if ctl.returncode != 3 or "prestart command" not in ctl.stderr:
            fail("hyperglassctl during prestart did not say the control socket opens after prestart", **figures)
        print(json.dumps(figures))
    finally:
        _end_started_supervisor(process)
        shutil.rmtree(directory, ignore_errors=True)


def upgrade_check_gets_no_stray_fds():
    """`hyperglass start` run holding a lock file on fd 9 and a pipe: neither the workers nor the upgrade
    check see them (both got them, and any fd of the supervisor without close-on-exec); the supervisor itself keeps both across
    a real upgrade, so a parent that watches the pipe to know the supervisor lives is not fooled."""
    import fcntl, subprocess
    scratch = tempfile.mkdtemp(prefix="hg-inherit-")
    os.chmod(scratch, 0o755)
    lock = os.open(os.path.join(scratch, "lock"), os.O_CREAT | os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.dup2(lock, 9)
    os.close(lock)
    read_end, write_end = os.pipe()
    seen = os.path.join(scratch, "seen")
    # A check that lists its fds and then says no (a yes would have the supervisor exec it).
    checker = _script(scratch, "fds", f"ls -l /proc/$$/fd > {seen}\necho 'hyperglass 9 cannot take over: only listing fds'\nexit 1\n")
    control = os.path.join(scratch, "control.sock")
    argv = [os.path.join(support.PRODUCTS, "hyperglass"), "start", "--bind", f"127.0.0.1:{support.free_port()}", "--control-socket", control,
            "--workers", "1", "--", support.TESTWORKER]
    process = subprocess.Popen(argv, pass_fds=(9, write_end), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(9)
    os.close(write_end)
    targets = {os.path.join(scratch, "lock"), f"pipe:[{os.fstat(read_end).st_ino}]"}

    def held_by(pid):
        found = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in targets:
                found.append(target)
        return sorted(found)
    try:
        if not wait_for(lambda: (support.control_request(control, {"v": 1, "cmd": "status"}, 1).get("supervisor") or {}).get("state") == "running", 15):
            fail("the supervisor did not reach 'running'")
        workers_holding = {pid: held_by(pid) for pid in support.child_pids(process.pid)}
        if not workers_holding or any(workers_holding.values()):
            fail("a worker got an fd the supervisor was started with", workers_holding=workers_holding)
        refused = support.control_request(control, {"v": 1, "cmd": "upgrade", "path": checker}, 10)
        listed = open(seen).read() if os.path.exists(seen) else ""
        upgraded = support.control_request(control, {"v": 1, "cmd": "upgrade", "path": os.path.abspath(os.path.join(support.PRODUCTS, "hyperglass")), "wait": True}, 15)
        figures = {"check_reply": refused.get("error", refused), "check_holding": [l.split()[-1] for l in listed.splitlines() if any(t in l for t in targets)],
                   "upgrade": upgraded.get("summary", upgraded), "supervisor_holding_after_upgrade": held_by(process.pid)}
        if not listed or figures["check_holding"]:
            fail("the upgrade check got an fd the supervisor was started with", **figures)
        if upgraded.get("ok") is not True or len(figures["supervisor_holding_after_upgrade"]) != 2:
            fail("the supervisor did not keep the fds it was started with across its upgrade", **figures)
        print(json.dumps(figures))
    finally:
        _end_started_supervisor(process)
        os.close(read_end)
        shutil.rmtree(scratch, ignore_errors=True)
