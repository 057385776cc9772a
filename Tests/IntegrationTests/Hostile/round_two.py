"""Hardening, round two (issue 25): what a hostile client or an unlucky operator could still do."""
import json, os, select, socket, subprocess, threading, time

import support
from support import Supervisor, end, fail, free_port, wait_for


def fd_limit():
    """Under `ulimit -n 128`, `workers 150` and autoscaling to 100 are refused or capped with the reason,
    and with crash_loop = exit the supervisor does not exit."""
    s = Supervisor(nofile=128, workers=2, extra=["--crash-loop", "exit"])
    try:
        reply = s.request({"v": 1, "cmd": "workers", "set": 150})
        figures = {"reply": reply}
        if reply.get("ok") is not False or "LimitNOFILE" not in reply.get("error", ""):
            fail("workers 150 under ulimit -n 128 was not refused with the reason", **figures)
        limit = int(open(f"/proc/{s.pid}/limits").read().split("Max open files")[1].split()[0])
        figures["soft_nofile"] = limit
        time.sleep(1)
        if s.process.poll() is not None:
            fail("the supervisor exited", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()
    # Autoscaling ceiling: a range beyond what fits is capped at start, and the status shows the cap.
    s = Supervisor(nofile=128, workers="auto:2-100", extra=["--crash-loop", "exit"])
    try:
        status = s.request({"v": 1, "cmd": "status"})
        scaling = status.get("autoscaling") or {}
        figures = {"autoscaling": scaling}
        if not scaling.get("configured_max") or scaling["configured_max"] >= 100:
            fail("an autoscaling ceiling of 100 under ulimit -n 128 was not capped", **figures)
        if "RLIMIT_NOFILE" not in s.log_text():
            fail("the cap was not said in the log", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def _probe(port, path, timeout=1.0):
    """One real probe, as a kubelet's: (status code or None, seconds)."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            c.settimeout(max(0.01, timeout - (time.monotonic() - start)))
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.29\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.") else None
    except (OSError, ValueError, IndexError) as error:
        status = repr(error)
    return status, time.monotonic() - start


class _IdleClients:
    """`count` connections that send nothing, re-opened as soon as the server closes them (at most 5,000
    re-opens a second), from a forked process: a thread would starve the probes of Python's GIL."""

    def __init__(self, port, count, seconds):
        self.port, self.count = port, count
        self.read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.read)
            opened = 0
            try:
                opened = self._run(seconds)
            finally:
                os.write(write, str(opened).encode())
                os._exit(0)
        os.close(write)

    def _open(self):
        try:
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            return c
        except OSError:
            return None

    def _run(self, seconds):
        sockets = [s for s in (self._open() for _ in range(self.count)) if s]
        opened = len(sockets)
        poller = select.poll()  # not select(): 1,000 sockets reach fds past 1023
        by_fd = {}
        for c in sockets:
            poller.register(c, select.POLLIN)
            by_fd[c.fileno()] = c
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready = poller.poll(50)[:50]
            time.sleep(0.01)
            for fd, _ in ready:
                c = by_fd.get(fd)
                if c is None:
                    continue
                try:
                    closed = c.recv(4096) == b""
                except (BlockingIOError, InterruptedError):
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    poller.unregister(fd)
                    del by_fd[fd]
                    c.close()
                    fresh = self._open()
                    if fresh:
                        opened += 1
                        poller.register(fresh, select.POLLIN)
                        by_fd[fresh.fileno()] = fresh
        return opened

    def stop(self):
        """Waits for the child (it ends at its deadline); how many connections it opened."""
        data = os.read(self.read, 64)
        os.close(self.read)
        os.waitpid(self.pid, 0)
        return int(data or b"0")


def probes_under_idle_connections():
    """16, then 1,000 connections that send nothing (re-opened when closed) leave /livez and /readyz
    answering 200 within 1 s, 10 probes of each: every one at 16; at 1,000, at most 2 of 20 and never two in a row."""
    port = free_port()
    s = Supervisor(workers=1, extra=["--metrics-bind", f"127.0.0.1:{port}"])
    figures = {}
    try:
        if not wait_for(lambda: _probe(port, "/readyz")[0] == 200, 15):
            fail("the pool did not become ready", log=s.log_text())
        for count in (16, 1000):
            idle = _IdleClients(port, count, seconds=5)
            opened = None
            try:
                time.sleep(1.5)
                results = []
                for _ in range(10):
                    for path in ("/livez", "/readyz"):
                        results.append((path,) + _probe(port, path))
                    time.sleep(0.1)
                bad = [r for r in results if r[1] != 200 or r[2] > 1.0]
                opened = idle.stop()
                figures[str(count)] = {"failed": len(bad), "slowest_s": round(max(r[2] for r in results), 3),
                                       "idle_opened": opened, "examples": bad[:3]}
                # What an orchestrator acts on is a run of failures (the kubelet's failureThreshold is 3, the
                # HAProxy config's fall 2): a flood of ~4,000 connections a second on a loaded 2-core machine
                # may still cost a probe whose client was descheduled between its connect and its request.
                # Main failed 20 of 20 here at 16 connections.
                streak = longest = 0
                for r in results:
                    streak = streak + 1 if (r[1] != 200 or r[2] > 1.0) else 0
                    longest = max(longest, streak)
                if len(bad) > (0 if count == 16 else 2) or longest > 1:
                    fail(f"{len(bad)} of {len(results)} probes failed or took over 1 s with {count} idle connections "
                         f"(longest run {longest})", **figures)
            finally:
                if opened is None:
                    end(idle.pid)
        print(json.dumps(figures))
    finally:
        s.stop()


def metrics_emfile():
    """With the supervisor's fds used up, the metrics listener does not spin, and a probe still gets its answer."""
    port = free_port()
    s = Supervisor(nofile=48, extra=["--metrics-bind", f"127.0.0.1:{port}"])
    held = []
    try:
        if not wait_for(lambda: _probe(port, "/livez")[0] == 200, 10):
            fail("/livez did not answer at start", log=s.log_text())
        held += support.exhaust_fds(s)  # control clients until the supervisor is out of fds
        silent = socket.create_connection(("127.0.0.1", port))  # pending in the backlog at EMFILE
        time.sleep(0.5)
        before = s.cpu_seconds()
        time.sleep(2)
        used = s.cpu_seconds() - before
        status, took = _probe(port, "/livez", timeout=2)
        silent.close()
        figures = {"control_clients": len(held), "cpu_s_in_2s": round(used, 3), "livez": status, "livez_s": round(took, 3)}
        if used > 0.3:
            fail(f"the supervisor used {used:.2f} s of CPU in 2 s with a metrics connection pending at EMFILE", **figures)
        if status != 200:
            fail("/livez was not answered at EMFILE", **figures)
        print(json.dumps(figures))
    finally:
        for c in held:
            c.close()
        s.stop()


def _config(path, text):
    with open(path, "w") as f:
        f.write(text)


def reload_default_config_missing():
    """Started from the default configuration file (no --config), a reload after the file was moved away is
    refused; it used to roll onto the built-in defaults. /etc is an overlay in a private mount namespace."""
    import shutil, sys, tempfile
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        print("{}")
        print("SKIP: needs unshare and nsenter (util-linux)", file=sys.stderr)
        sys.exit(77)
    scratch = tempfile.mkdtemp(prefix="hg-etc-")
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    os.makedirs(upper)
    os.makedirs(work)
    conf = os.path.join(scratch, "supervisor.conf")
    _config(conf, "[supervisor]\ngraceful_timeout = 7s\n")
    script = (f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc && "
              f"mkdir -p /etc/hyperglass-supervisor && cp {conf} /etc/hyperglass-supervisor/supervisor.conf && exec \"$@\"")
    s = Supervisor(workers=2, wrapper=["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"])
    try:
        wait_for(lambda: len(s.children()) == 2, 10)
        before = sorted(s.children())
        moved = subprocess.run(["nsenter", "-t", str(s.pid), "-m", "mv", "/etc/hyperglass-supervisor/supervisor.conf",
                                "/etc/hyperglass-supervisor/supervisor.conf.bak"], capture_output=True, text=True)
        if moved.returncode != 0:
            fail("could not move the file inside the supervisor's mount namespace: " + moved.stderr)
        reply = s.request({"v": 1, "cmd": "reload", "wait": True}, timeout=20)
        time.sleep(0.5)
        figures = {"reply": reply, "workers_before": before, "workers_after": sorted(s.children())}
        if reply.get("ok") is not False or "started from" not in reply.get("error", ""):
            fail("a reload with the default configuration file gone was not refused", **figures)
        if sorted(s.children()) != before:
            fail("the workers changed", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()
        subprocess.run(["rm", "-rf", scratch])


def config_file_over_1mib():
    """A configuration file over 1 MiB is refused (exit 78), not cut at 1 MiB into another configuration."""
    import tempfile
    directory = tempfile.mkdtemp(prefix="hg-big-")
    path = os.path.join(directory, "supervisor.conf")
    _config(path, "[supervisor]\n" + ("# padding\n" * 110_000) + "workers = 7\n")
    try:
        result = subprocess.run([os.path.join(support.PRODUCTS, "hyperglass"), "check-config", "--config", path],
                                capture_output=True, text=True, timeout=20)
        figures = {"size": os.path.getsize(path), "status": result.returncode, "stderr": result.stderr[-300:]}
        if result.returncode != 78 or "1 MiB" not in result.stderr:
            fail("a configuration file over 1 MiB was not refused", **figures)
        print(json.dumps(figures))
    finally:
        subprocess.run(["rm", "-rf", directory])


def config_path_blocks_on_open():
    """A reload whose configuration path became a FIFO is refused at once; the loop keeps answering."""
    import tempfile
    directory = tempfile.mkdtemp(prefix="hg-fifo-")
    path = os.path.join(directory, "supervisor.conf")
    _config(path, "[supervisor]\ngraceful_timeout = 7s\n")
    s = Supervisor(workers=1, extra=["--config", path])
    try:
        os.unlink(path)
        os.mkfifo(path)
        start = time.monotonic()
        reply = s.request({"v": 1, "cmd": "reload"}, timeout=5)
        took = time.monotonic() - start
        ping = s.request({"v": 1, "cmd": "ping"}, timeout=2)
        figures = {"reply": reply, "reply_s": round(took, 3), "ping": ping}
        if reply.get("ok") is not False or "regular file" not in reply.get("error", ""):
            fail("a reload from a FIFO was not refused", **figures)
        if ping.get("ok") is not True:
            fail("the loop did not answer ping after the reload", **figures)
        print(json.dumps(figures))
    finally:
        # A writer releases a supervisor frozen in open() (as main's was), so it can be stopped.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
        s.stop()
        subprocess.run(["rm", "-rf", directory])


def control_group_first_supplementary():
    """A user whose lowest supplementary group is control_group (nogroup here) may read status."""
    def as_member():
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([65534, 70000])  # sorted by the kernel: nogroup first
                os.setgid(70001)
                os.setuid(12345)
                groups = open("/proc/self/status").read().split("Groups:")[1].split("\n")[0]
                reply = s.request({"v": 1, "cmd": "status"})
                os.write(w, json.dumps({"groups": groups, "ok": reply.get("ok"), "error": reply.get("error")}).encode())
            finally:
                os._exit(0)
        os.close(w)
        data = os.read(r, 65536)
        os.waitpid(pid, 0)
        return json.loads(data or b"{}")
    s = Supervisor(workers=1)
    try:
        r, w = os.pipe()
        figures = as_member()
        os.close(r)
        if figures.get("ok") is not True:
            fail("a member of control_group through its first supplementary group was refused", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def reload_error_hides_values_from_readers():
    """A failed reload's reason in status, which control_group members read, does not quote the configuration."""
    import tempfile
    from support import READER
    directory = tempfile.mkdtemp(prefix="hg-secret-")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "supervisor.conf")
    _config(path, "[worker]\nenvironment = GREETING=hello\n")
    s = Supervisor(workers=1, extra=["--config", path])
    try:
        _config(path, "[worker]\nenvironment = API_TOKEN: s3cr3t-value\n")
        reply = s.request({"v": 1, "cmd": "reload"})
        status = s.request({"v": 1, "cmd": "status"}, as_user=READER)
        figures = {"admin_reply": reply, "reader_status_ok": status.get("ok"), "reader_last_roll": status.get("last_roll")}
        if reply.get("ok") is not False:
            fail("the bad configuration was not refused", **figures)
        if status.get("ok") is not True:
            fail("the reader's status was not answered", **figures)
        if "s3cr3t" in json.dumps(status):
            fail("a read-only member sees a configuration value in status", **figures)
        if "supervisor.conf:2" not in json.dumps(status):
            fail("status no longer says where the problem is", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()
        subprocess.run(["rm", "-rf", directory])


def evicted_events_follower():
    """`hyperglassctl events` dropped for reading too slowly says so on stderr and exits non-zero; its stdout
    holds only events. One that keeps up exits 0 when the supervisor stops."""
    s = Supervisor(workers=1, worker=os.path.join(support.PRODUCTS, "hyperglass-worker"))
    ctl = os.path.join(support.PRODUCTS, "hyperglassctl")
    err = open(os.path.join(s.dir, "events.err"), "w+")
    slow = subprocess.Popen([ctl, "--socket", s.control, "events"], stdout=subprocess.PIPE, stderr=err)
    try:
        # Its stdout is a pipe nobody reads yet: it blocks writing, stops reading, and is dropped.
        def full_log():
            s.log.flush()
            return open(s.log.name).read()
        for _ in range(60):
            if "dropped a 'hyperglassctl events' follower" in full_log():
                break
            s.request({"v": 1, "cmd": "workers", "set": 48, "wait": True}, timeout=30)
            s.request({"v": 1, "cmd": "workers", "set": 1, "wait": True}, timeout=30)
        dropped = "dropped a 'hyperglassctl events' follower" in full_log()
        out, _ = slow.communicate(timeout=30)
        err.seek(0)
        stderr = err.read()
        lines = out.decode(errors="replace").splitlines()
        not_events = [line for line in lines if '"event"' not in line]
        figures = {"dropped": dropped, "status": slow.returncode, "lines": len(lines), "not_events": not_events[:2],
                   "stderr": stderr[-300:]}
        if not dropped:
            fail("the follower was never dropped", **figures)
        if slow.returncode == 0 or "dropped this reader" not in stderr:
            fail("a dropped follower exited 0 or said nothing on stderr", **figures)
        # The last line may be cut where the supervisor's buffer ended; every complete one is an event.
        if any('"ok":false' in line for line in lines):
            fail("an error line went to stdout as an event", **figures)
        keeping_up = subprocess.Popen([ctl, "--socket", s.control, "events"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        s.stop()
        _, keeping_err = keeping_up.communicate(timeout=15)
        figures["keeping_up_status"] = keeping_up.returncode
        if keeping_up.returncode != 0:
            fail("a follower that kept up did not exit 0 when the supervisor stopped: " + keeping_err.decode()[-200:], **figures)
        print(json.dumps(figures))
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
        err.close()
        s.stop()


def stale_worker_dirs():
    """The private workers.XXXXXX directory of a SIGKILLed supervisor is removed at the next start in the
    same runtime directory; a running supervisor's, another user's and one holding a non-socket stay."""
    import tempfile
    runtime = tempfile.mkdtemp(prefix="hg-stale-")
    os.chmod(runtime, 0o755)
    started = []

    def start(name):
        argv = [os.path.join(support.PRODUCTS, "hyperglass"), "start", "--bind", f"127.0.0.1:{free_port()}",
                "--control-socket", os.path.join(runtime, name), "--workers", "1", "--", support.TESTWORKER]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(runtime, name + ".log"), "w"),
                                   env={"PATH": os.environ["PATH"]})
        started.append(process)
        wait_for(lambda: support.control_request(os.path.join(runtime, name), {"cmd": "ping"}, 1).get("ok") is True, 10)
        return process

    def dirs():
        return sorted(n for n in os.listdir(runtime) if n.startswith("workers."))

    try:
        killed = start("a.sock")
        running = start("b.sock")
        wait_for(lambda: len(dirs()) == 2, 5)
        first_two = dirs()
        killed.kill()  # its workers follow through PR_SET_PDEATHSIG
        killed.wait()
        time.sleep(0.5)
        foreign = os.path.join(runtime, "workers.fOrEiG")
        os.mkdir(foreign, 0o700)
        os.chown(foreign, 12345, 12345)
        odd = os.path.join(runtime, "workers.nOtOuR")
        os.mkdir(odd, 0o700)
        open(os.path.join(odd, "notes.txt"), "w").close()
        before = dirs()
        start("c.sock")
        wait_for(lambda: len(dirs()) == len(before), 5)
        after = dirs()
        figures = {"before": before, "after": after, "first_two": first_two}
        gone = [d for d in before if d not in after]
        if len(gone) != 1 or gone[0] not in first_two:
            fail("not exactly the SIGKILLed supervisor's directory was removed", **figures)
        if "workers.fOrEiG" not in after or "workers.nOtOuR" not in after:
            fail("a directory that is not ours was removed", **figures)
        if support.control_request(os.path.join(runtime, "b.sock"), {"cmd": "status"}, 2).get("ok") is not True:
            fail("the running supervisor was disturbed", **figures)
        print(json.dumps(figures))
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        subprocess.run(["rm", "-rf", runtime])


def request_forms():
    """The metrics listener and the bundled worker answer an absolute-form request line ("GET
    http://host/livez") by its path, and a 1 MB header with a 431 the client can read (not a reset)."""
    port = free_port()
    s = Supervisor(workers=1, worker=os.path.join(support.PRODUCTS, "hyperglass-worker"), extra=["--metrics-bind", f"127.0.0.1:{port}"])

    def first_line(port, data):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
                try:
                    c.sendall(data)
                except OSError:
                    pass  # the server may answer before it has read everything
                out = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            return out.split(b"\r\n")[0].decode()
        except OSError as error:
            return repr(error)

    try:
        if not wait_for(lambda: _probe(port, "/livez")[0] == 200, 10):
            fail("/livez did not answer", log=s.log_text())
        app_port = int(s.process.args[s.process.args.index("--bind") + 1].rsplit(":", 1)[1])
        big = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
        figures = {
            "metrics_absolute": first_line(port, f"GET http://127.0.0.1:{port}/livez HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
            "metrics_1mb_header": first_line(port, big),
            "worker_absolute": first_line(app_port, f"GET http://127.0.0.1:{app_port}/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()),
            "worker_1mb_header": first_line(app_port, big),
        }
        bad = {k: v for k, v in figures.items() if not v.startswith("HTTP/1.1 " + ("431" if "1mb" in k else "200"))}
        if bad:
            fail(f"{len(bad)} of 4 answers were not as expected: {bad}", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def emfile_at_spawn():
    """Spawns that fail with EMFILE (the open-file limit lowered under a running supervisor, with prlimit)
    are a resource limit: with crash_loop = exit the supervisor keeps running, counts no crash loop, and
    the pool does not grow further meanwhile."""
    import resource
    s = Supervisor(workers=2, extra=["--crash-loop", "exit"])
    try:
        wait_for(lambda: len(s.children()) == 2, 10)
        in_use = len(os.listdir(f"/proc/{s.pid}/fd"))
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (in_use + 6, in_use + 6))
        reply = s.request({"v": 1, "cmd": "workers", "set": 12})
        time.sleep(10)
        grow = s.request({"v": 1, "cmd": "workers", "set": 14})
        time.sleep(0.5)
        s.log.flush()
        text = open(s.log.name).read()
        figures = {"reply": reply, "alive": s.process.poll() is None, "limited": text.count("a resource limit, not a crash"),
                   "workers": len(s.children()), "refused_growth": "not scaling 12 → 14" in grow.get("error", ""), "grow_reply": grow}
        if s.process.poll() is not None:
            fail("the supervisor exited", **figures)
        if "crash loop" in text:
            fail("spawns failing with EMFILE were counted as a crash loop", **figures)
        if figures["limited"] == 0 or not figures["refused_growth"] or grow.get("ok") is not False:
            fail("no spawn was reported as a resource limit, or the pool grew while limited", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()
