"""Round four: the upgrade preflight beside the event loop, SIGUSR2's upgrade in place, and the shared
worker cgroups named by pid namespace, attacked as an outsider and an unlucky operator would."""
import json, os, shutil, signal, sys, tempfile, time

import support
from support import Supervisor, fail, wait_for
from round_three import _alive, _pids_in, _running, _script


def _cgroup_of(pid):
    """The v2 cgroup path of `pid` (the `0::` line), or None."""
    try:
        for line in open(f"/proc/{pid}/cgroup"):
            if line.startswith("0::"):
                return line[3:].strip()
    except OSError:
        pass
    return None


def _unified_mount():
    return next((m for m in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified") if os.path.exists(m + "/cgroup.controllers")), None)


def _cgroup_base(s):
    """The shared or delegated base the supervisor's log names ("a cgroup per worker under BASE (…"), or None."""
    text = open(s.log.name).read()
    marker = "a cgroup per worker under "
    if marker not in text:
        return None
    return text.split(marker, 1)[1].split(" (", 1)[0]


def upgrade_check_leaves_no_daemon():
    """`upgrade PATH` where PATH starts a `setsid` child that holds its output and exits with its answer, a
    double-forked daemon with its output closed, or a `setsid` child and then hangs: each is refused (the
    first by what it wrote, at once, not as hung 5 s later), and nothing any of them started lives on (both
    outlived the check: reparented to the supervisor, the subreaper, outside the check's process group).
    A live worker's own helper, reparented to the supervisor the same way but in the worker's cgroup, lives."""
    scratch = tempfile.mkdtemp(prefix="hg-upgrade-daemon-")
    os.chmod(scratch, 0o755)
    pids = os.path.join(scratch, "pids")
    helper = os.path.join(scratch, "helper")
    # The worker double-forks a helper (reparented to the supervisor while the worker lives), then serves.
    worker = _script(scratch, "worker", f"( setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {helper} )\n"
                                         f"exec {support.TESTWORKER} \"$@\"\n")
    s = Supervisor(workers=1, worker=worker)
    try:
        _running(s)
        cgroups = _cgroup_base(s) is not None
        if not wait_for(lambda: _pids_in(helper), 5):
            fail("the worker's helper did not start", log=s.log_text())
        workers = [pid for pid in s.children() if pid not in _pids_in(helper)]
        cases = {
            "leaves a setsid child holding its output":
                (_script(scratch, "holder", f"setsid sleep 301 &\necho $! >> {pids}\nsleep 0.3\necho 'hyperglass 9 cannot take over: a test'\nexit 1\n"),
                 "refused to take over", 3),
            "leaves a double-forked daemon":
                (_script(scratch, "daemon", f"( setsid sleep 302 </dev/null >/dev/null 2>&1 & echo $! >> {pids} )\nsleep 0.3\necho no\nexit 1\n"),
                 "refused to take over", 3),
            # A setsid child with a child of its own: that one comes to the supervisor only when its parent, killed
            # as the check's leftover, has died, after the look that found its parent.
            "leaves a setsid child with a child of its own":
                (_script(scratch, "nested", f"setsid sh -c 'sleep 305 </dev/null >/dev/null 2>&1 & echo $! >> {pids}; exec sleep 60' </dev/null >/dev/null 2>&1 &\n"
                                            "sleep 0.3\necho no\nexit 1\n"),
                 "refused to take over", 3),
            "starts a setsid child and hangs":
                (_script(scratch, "hanger", f"setsid sleep 303 </dev/null >/dev/null 2>&1 &\necho $! >> {pids}\nexec sleep 60\n"),
                 "did not answer", 8),
        }
        figures = {"worker_cgroups": cgroups}
        for name, (path, expected, bound) in cases.items():
            start = time.monotonic()
            reply = s.request({"v": 1, "cmd": "upgrade", "path": path}, timeout=20)
            took = time.monotonic() - start
            figures[name] = {"reply": reply.get("error", reply), "seconds": round(took, 2)}
            if reply.get("ok") is not False or expected not in reply.get("error", "") or took > bound:
                fail(f"an upgrade to a check that {name} was not refused ({expected}) within {bound} s", **figures)
            # Each case alone: a later check's end must not be what ends an earlier one's leftovers.
            wait_for(lambda: not any(_alive(pid) for pid in _pids_in(pids)), 2)
            figures[name]["left_running"] = [pid for pid in _pids_in(pids) if _alive(pid)]
            if figures[name]["left_running"]:
                fail(f"what a check that {name} started still runs after its refusal", **figures, log=s.log_text())
        # The reaper takes what was killed; allow it a moment.
        wait_for(lambda: not any(_alive(pid) for pid in _pids_in(pids)), 2)
        started = _pids_in(pids)
        figures["left_running"] = [pid for pid in started if _alive(pid)]
        if len(started) != len(cases) or figures["left_running"]:
            fail("what the refused checks started still runs (or never ran)", **figures, log=s.log_text())
        figures["worker_helper_alive"] = all(_alive(pid) for pid in _pids_in(helper))
        if cgroups and not figures["worker_helper_alive"]:
            fail("a live worker's helper (in the worker's cgroup) was killed at a check's end", **figures, log=s.log_text())
        if not workers or not set(workers) <= set(s.children()):
            fail("the worker changed", **figures, workers_before=workers, children=s.children())
        if s.request({"cmd": "ping"}).get("ok") is not True:
            fail("the supervisor does not answer", **figures)
        print(json.dumps(figures))
    finally:
        for pid in _pids_in(pids) + _pids_in(helper):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        s.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def upgrade_keeps_worker_cgroups_in_root_cgroup():
    """A supervisor in the root of its cgroup tree (a container's own cgroup namespace, or here) upgraded in
    place: the new program goes on putting workers in cgroups under the same base, and removes the base at
    exit. (It found none: a worker started after the upgrade ran in the root cgroup, untracked, and the base
    with the old worker's cgroup stayed behind after a clean exit.)"""
    s = Supervisor(workers=1)
    try:
        _running(s)
        base = _cgroup_base(s)
        own = _cgroup_of(s.pid)
        if base is None:
            print("{}")
            print("SKIP: the supervisor made no worker cgroups here", file=sys.stderr)
            sys.exit(77)
        figures = {"base": base, "supervisor_cgroup": own}
        upgraded = s.request({"v": 1, "cmd": "upgrade", "path": os.path.join(support.PRODUCTS, "hyperglass"), "wait": True}, timeout=20)
        figures["upgrade"] = upgraded.get("summary", upgraded)
        if upgraded.get("ok") is not True:
            fail("the upgrade to the same build failed", **figures, log=s.log_text())
        restart = s.request({"v": 1, "cmd": "restart", "worker": "all", "wait": True}, timeout=30)
        if restart.get("ok") is not True:
            fail("restart after the upgrade failed", **figures, restart=restart, log=s.log_text())
        workers = s.children()
        mount = _unified_mount()
        figures["worker_cgroups_after"] = {pid: _cgroup_of(pid) for pid in workers}
        if not workers or any(not (mount + (_cgroup_of(pid) or "")).startswith(base + "/worker-") for pid in workers):
            fail("a worker started after the upgrade is not in a worker cgroup under the base", **figures)
        s.stop()
        figures["base_left_after_exit"] = os.path.exists(base)
        if figures["base_left_after_exit"]:
            fail("the base cgroup stayed behind after the upgraded supervisor exited", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def legacy_cgroup_of_another_pid_namespace():
    """A start in another pid namespace (unshare --pid) beside a live supervisor whose shared base has the
    earlier build's name, `hyperglass-PID` (what an in-place upgrade from that build keeps): it must not kill
    that supervisor's workers. The name says no namespace, so the pid is looked up where it means nothing;
    the workers' cgroups list the processes as 0 there, which says they are not ours to judge."""
    if not os.path.exists("/usr/bin/unshare"):
        print("{}")
        print("SKIP: no /usr/bin/unshare", file=sys.stderr)
        sys.exit(77)
    mount = _unified_mount()
    own = _cgroup_of(os.getpid())
    if mount is None or own is None or not os.access(mount + ("" if own == "/" else own), os.W_OK):
        print("{}")
        print("SKIP: no writable cgroup v2 here", file=sys.stderr)
        sys.exit(77)
    import subprocess
    # The live "supervisor" of the earlier build: this sleep, its workers' cgroup holding a victim.
    victim = subprocess.Popen(["sleep", "300"])
    base = mount + ("" if own == "/" else own) + f"/hyperglass-{victim.pid}"
    os.mkdir(base)
    os.mkdir(base + "/worker-0.1")
    with open(base + "/worker-0.1/cgroup.procs", "w") as f:
        f.write(str(victim.pid))
    s = None
    try:
        s = Supervisor(workers=1, wrapper=["/usr/bin/unshare", "--pid", "--fork", "--mount-proc"])
        if not wait_for(lambda: _cgroup_base(s) is not None, 10):
            fail("the supervisor in another pid namespace did not start", log=s.log_text())
        time.sleep(0.3)
        figures = {"legacy_base": base, "victim_alive": victim.poll() is None,
                   "said_killed": "left in the cgroups of a supervisor that was killed" in s.log_text()}
        if not figures["victim_alive"] or figures["said_killed"] or not os.path.exists(base):
            fail("a start in another pid namespace killed a live supervisor's workers (earlier build's cgroup name)", **figures, log=s.log_text())
        print(json.dumps(figures))
    finally:
        if s:
            s.stop()
        victim.kill()
        victim.wait(5)
        for path in (base + "/worker-0.1", base):
            wait_for(lambda: not os.path.exists(path) or _try_rmdir(path), 2)


def _try_rmdir(path):
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False



def leftover_cgroup_with_our_own_pid():
    """A start whose pid a SIGKILLed supervisor of the same pid namespace had (pids wrap): its base
    `hyperglass-NS-PID`, with a stray still in a worker's cgroup, has our own name. It is a leftover all
    the same (nothing of ours exists before the start): the stray is killed and the cgroup made anew, not
    skipped as ours, leaving the stray alive (holding the addresses about to be bound) and our first worker
    joining its cgroup."""
    mount = _unified_mount()
    own = _cgroup_of(os.getpid())
    if mount is None or own is None or not os.access(mount + ("" if own == "/" else own), os.W_OK):
        print("{}")
        print("SKIP: no writable cgroup v2 here", file=sys.stderr)
        sys.exit(77)
    scratch = tempfile.mkdtemp(prefix="hg-own-pid-")
    os.chmod(scratch, 0o755)
    stray = os.path.join(scratch, "stray")
    namespace = "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit())
    parent = mount + ("" if own == "/" else own)
    # The shell makes the predecessor's leftovers under its own pid, then becomes the supervisor (same pid).
    script = (f'base={parent}/hyperglass-{namespace}-$$\nmkdir -p "$base/worker-0.1"\n'
              f'( sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {stray} )\n'
              f'cat {stray} > "$base/worker-0.1/cgroup.procs"\nexec "$@"\n')
    s = None
    try:
        s = Supervisor(workers=1, wrapper=["/bin/sh", "-c", script, "sh"])
        _running(s)
        victim = (_pids_in(stray) or [0])[0]
        figures = {"stray": victim, "stray_alive": victim > 0 and _alive(victim),
                   "said_killed": "left in the cgroups of a supervisor that was killed" in s.log_text(),
                   "worker_cgroups": {pid: _cgroup_of(pid) for pid in s.children()}}
        if not victim or figures["stray_alive"] or not figures["said_killed"]:
            fail("a leftover base with our own pid's name was skipped as ours: its stray lives", **figures, log=s.log_text())
        print(json.dumps(figures))
    finally:
        if s:
            s.stop()
        for pid in _pids_in(stray):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(scratch, ignore_errors=True)


def second_start_under_unshare_without_mount_proc():
    """Two supervisors in one new pid namespace whose /proc is still the parent's (`unshare --pid --fork`
    without --mount-proc): the second must not kill the first one's worker. The base's name says our
    namespace, but a pid looked up in that /proc means another process there, or none (the second killed
    the first one's live worker: 'killed by SIGKILL'). Readiness by exec: by accepting reads /proc too."""
    import subprocess
    if not os.path.exists("/usr/bin/unshare"):
        print("{}")
        print("SKIP: no /usr/bin/unshare", file=sys.stderr)
        sys.exit(77)
    scratch = tempfile.mkdtemp(prefix="hg-unshare-noproc-")
    os.chmod(scratch, 0o755)
    hyperglass = os.path.join(support.PRODUCTS, "hyperglass")

    def start(name):
        return (f"{hyperglass} start --bind 127.0.0.1:{support.free_port()} --control-socket {scratch}/{name}.sock --workers 1 --readiness exec "
                f"-- {support.TESTWORKER} > {scratch}/{name}.log 2>&1 &\n")
    # The first supervisor gets a pid that names no process in this /proc (the parent namespace's): found by forking.
    script = ("i=0\nwhile [ $i -lt 5000 ]; do /bin/true & wait $!; [ -e /proc/$(( $! + 1 )) ] || break; i=$((i+1)); done\n"
              + start("first") + "first=$!\n"
              + f"i=0\nwhile [ $i -lt 100 ] && ! grep -q 'workers ready' {scratch}/first.log; do sleep 0.1; i=$((i+1)); done\n"
              + start("second") + "second=$!\n"
              + f"i=0\nwhile [ $i -lt 100 ] && ! grep -q 'workers ready' {scratch}/second.log; do sleep 0.1; i=$((i+1)); done\n"
              + "sleep 0.5\nkill -TERM $first $second\nwait\n")
    try:
        process = subprocess.Popen(["/usr/bin/unshare", "--pid", "--fork", "/bin/sh", "-c", script],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()  # its child, the namespace's init, takes the namespace with it
            process.wait(5)
            fail("the two supervisors did not stop in time")
        read = lambda name: open(os.path.join(scratch, name + ".log")).read() if os.path.exists(os.path.join(scratch, name + ".log")) else ""
        first, second = read("first"), read("second")
        figures = {"first_worker_killed": "exited unexpectedly: killed by SIGKILL" in first,
                   "second_said_killed": "left in the cgroups of a supervisor that was killed" in second,
                   "both_ready": "workers ready" in first and "workers ready" in second}
        if figures["first_worker_killed"] or figures["second_said_killed"]:
            fail("a second start in the same pid namespace, its /proc the parent's, killed the first one's live worker", **figures,
                 first=first[-800:], second=second[-800:])
        if not figures["both_ready"]:
            fail("the two supervisors did not both start", **figures, first=first[-800:], second=second[-800:])
        print(json.dumps(figures))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def probe_connected_across_an_upgrade():
    """A /livez probe connected to metrics_bind just before an upgrade in place, its request sent just
    after (or half of it before): the new program answers it. Control connections were carried across the
    exec; metrics connections were closed unanswered (1 probe in ~4,000 back to back failed under load)."""
    import socket
    port = support.free_port()
    s = Supervisor(workers=1, extra=["--metrics-bind", f"127.0.0.1:{port}"])
    held = []
    try:
        _running(s)
        request = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.29\r\n\r\n"
        for sent_before in (b"", request[:10]):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            if sent_before:
                c.sendall(sent_before)
            held.append((c, sent_before))
        time.sleep(0.2)  # accepted (and what was sent read) by the program about to be replaced
        upgraded = s.request({"v": 1, "cmd": "upgrade", "path": os.path.join(support.PRODUCTS, "hyperglass"), "wait": True}, timeout=20)
        figures = {"upgrade": upgraded.get("summary", upgraded), "answers": []}
        if upgraded.get("ok") is not True:
            fail("the upgrade failed", **figures, log=s.log_text())
        for c, sent_before in held:
            try:
                c.sendall(request[len(sent_before):])
                data = c.recv(4096)
                figures["answers"].append(data.split(b"\r\n")[0].decode(errors="replace") if data else "closed without an answer")
            except OSError as error:
                figures["answers"].append(repr(error))
        if any(not a.startswith("HTTP/1.1 200") for a in figures["answers"]):
            fail("a probe connected before the upgrade was not answered after it", **figures, log=s.log_text())
        fds = len(os.listdir(f"/proc/{s.pid}/fd"))
        figures["fds"] = fds
        print(json.dumps(figures))
    finally:
        for c, _ in held:
            c.close()
        s.stop()


def upgrade_check_that_writes_forever():
    """`upgrade PATH` where PATH writes without end (`yes`): refused at once by what it wrote, not read
    for its whole 5 s at the cost of a CPU (the supervisor used 491 of 500 ticks meanwhile); pings answer."""
    s = Supervisor(workers=1)
    scratch = tempfile.mkdtemp(prefix="hg-upgrade-yes-")
    try:
        _running(s)
        path = _script(scratch, "yes", "exec yes 'hyperglass 9 can take over state version 2'\n")
        ticks = lambda: sum(int(x) for x in open(f"/proc/{s.pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
        before, start = ticks(), time.monotonic()
        reply = s.request({"v": 1, "cmd": "upgrade", "path": path}, timeout=20)
        took = time.monotonic() - start
        used = (ticks() - before) / os.sysconf("SC_CLK_TCK")
        figures = {"reply": reply.get("error", reply), "seconds": round(took, 2), "supervisor_cpu_seconds": round(used, 2)}
        if reply.get("ok") is not False or "refused to take over" not in reply.get("error", "") or took > 2 or used > 0.5:
            fail("a check that writes without end was not refused at once, cheaply", **figures)
        if s.request({"cmd": "ping"}, timeout=3).get("ok") is not True or s.process.poll() is not None:
            fail("the supervisor does not answer", **figures)
        print(json.dumps(figures))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        s.stop()
