#!/usr/bin/env python3
"""Hostile clients and local users against a real `hyperglass start` (issue 11).

Usage: hostile.py PRODUCTS_DIR SCENARIO.  Exit 0 when the supervisor withstood the scenario, 1 when
not (the reason on stderr), 77 when it cannot run here (not root). One JSON line of figures on stdout.
Every process started is ended by pid; every wait is bounded.
"""
import json, os, resource, signal, socket, subprocess, sys, tempfile, threading, time

PRODUCTS = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
TESTWORKER = os.path.join(HERE, "..", "Fixtures", "testworker.py")
READER = (12345, 65534)  # a control_group (nogroup) member: read-only, as the attacker


def fail(message, **figures):
    print(json.dumps(figures))
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class Supervisor:
    """`hyperglass start` with a notify socket we own, so its WATCHDOG=1 pings can be timed."""

    def __init__(self, extra=(), workers=1, watchdog_usec=None, nofile=None, worker_args=(), env=None, wrapper=(), worker=TESTWORKER):
        self.dir = tempfile.mkdtemp(prefix="hg-hostile-")
        os.chmod(self.dir, 0o755)
        self.control = os.path.join(self.dir, "control.sock")
        self.pings = []
        self.notify = None
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HYPERGLASS_") and k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        if watchdog_usec:
            self.notify_path = os.path.join(self.dir, "systemd-notify.sock")
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(self.notify_path)
            self.notify.settimeout(0.2)
            environment["NOTIFY_SOCKET"] = self.notify_path
            environment["WATCHDOG_USEC"] = str(watchdog_usec)
            self.listening = True
            self.thread = threading.Thread(target=self._record_pings, daemon=True)
            self.thread.start()
        environment.update(env or {})
        port = free_port()
        argv = [os.path.join(PRODUCTS, "hyperglass"), "start", "--bind", f"127.0.0.1:{port}", "--control-socket", self.control,
                "--workers", str(workers), "--control-group", "nogroup", *extra, "--", worker, *worker_args]
        self.log = open(os.path.join(self.dir, "supervisor.log"), "w+")

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.process = subprocess.Popen([*wrapper, *argv], env=environment, stdout=self.log, stderr=self.log, preexec_fn=limits)
        self.pid = self.process.pid
        if wrapper:  # the supervisor is the wrapper's child, once it has exec'ed
            exe = os.path.join(PRODUCTS, "hyperglass")
            def supervisor_pid():
                for pid in child_pids(self.process.pid):
                    try:
                        if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(exe):
                            return pid
                    except OSError:
                        pass
                return None
            wait_for(lambda: supervisor_pid() is not None, 5)
            self.pid = supervisor_pid() or self.process.pid
        if not wait_for(lambda: self.request({"cmd": "ping"}, timeout=1).get("ok") is True, 10):
            self.stop()
            fail("the supervisor did not answer ping at start: " + self.log_text())

    def _record_pings(self):
        while self.listening:
            try:
                data = self.notify.recv(4096)
            except (socket.timeout, OSError):
                continue
            if b"WATCHDOG=1" in data:
                self.pings.append(time.monotonic())

    def request(self, message, timeout=5.0, as_user=None):
        """One request on a new connection, as root or as a forked user; the reply as a dict ({} on no reply)."""
        if as_user:
            return run_as(as_user, lambda: self.request(message, timeout))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(self.control)
                s.sendall((json.dumps(message) + "\n").encode())
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                return json.loads(data) if data.strip() else {}
        except (OSError, ValueError):
            return {}

    def cpu_seconds(self):
        fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self):
        for line in open(f"/proc/{self.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0

    def max_ping_gap(self, since):
        times = [t for t in self.pings if t >= since]
        gaps = [b - a for a, b in zip(times, times[1:])]
        if times:
            gaps.append(time.monotonic() - times[-1])
        return max(gaps) if gaps else float("inf")

    def log_text(self):
        self.log.flush()
        return open(self.log.name).read()[-2000:]

    def children(self):
        return child_pids(self.pid)

    def stop(self):
        if self.notify:
            self.listening = False
        if self.process.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                for child in self.children():
                    os.kill(child, signal.SIGKILL)
                self.process.kill()
                self.process.wait(5)


def child_pids(pid):
    try:
        return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def run_as(user, body):
    """Runs body() in a forked child with uid/gid switched; its JSON-able result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
            os.write(write, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(write)
    data = b""
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(data) if data else None


def hostile_child(user, body):
    """Starts body() as `user` in a forked child; its pid (the caller kills it)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
            body()
        finally:
            os._exit(0)
    return pid


def end(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def timed_status(supervisor, timeout=5.0):
    start = time.monotonic()
    reply = supervisor.request({"cmd": "status"}, timeout=timeout)
    return reply.get("ok") is True, time.monotonic() - start


# MARK: - scenarios

def idle_lockout():
    """64 idle connections from a control_group member, pinging now and then: root still gets in."""
    s = Supervisor()
    try:
        def hold():
            sockets = []
            for _ in range(80):
                try:
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    c.connect(s.control)
                    sockets.append(c)
                except OSError:
                    pass
            for _ in range(200):  # bounded: about 20 s
                for c in sockets:
                    try:
                        c.send(b'{"cmd":"ping"}\n')
                    except OSError:
                        pass
                time.sleep(0.1)
        attacker = hostile_child(READER, hold)
        time.sleep(1.0)
        results = [timed_status(s, timeout=2) for _ in range(5)]
        end(attacker)
        figures = {"root_status_ok": sum(ok for ok, _ in results), "slowest_s": round(max(t for _, t in results), 3)}
        if not all(ok for ok, _ in results):
            fail("root was locked out by 80 idle connections", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def pipelined_flood():
    """A control_group member pipelines status requests as fast as it can and never reads: memory, the
    systemd watchdog and root's status must not suffer."""
    s = Supervisor(workers=4, watchdog_usec=1_000_000)
    try:
        wait_for(lambda: len(s.pings) >= 2, 5)
        rss_before = s.rss_mb()

        def flood():
            sockets = []
            for _ in range(8):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(s.control)
                c.setblocking(False)
                sockets.append(c)
            line = b'{"cmd":"status"}\n' * 1000
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:
                for c in sockets:
                    try:
                        c.send(line)
                    except BlockingIOError:
                        pass
                    except OSError:
                        sockets.remove(c)
                        try:
                            n = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                            n.connect(s.control)
                            n.setblocking(False)
                            sockets.append(n)
                        except OSError:
                            pass
                time.sleep(0.001)
            time.sleep(30)
        start = time.monotonic()
        attacker = hostile_child(READER, flood)
        latencies = []
        while time.monotonic() - start < 12:
            ok, took = timed_status(s, timeout=5)
            latencies.append(took if ok else float("inf"))
            time.sleep(0.1)
        gap = s.max_ping_gap(start)
        rss_during = s.rss_mb()
        end(attacker)
        figures = {"watchdog_max_gap_s": round(gap, 3), "root_status_slowest_s": round(max(latencies), 3),
                   "root_status_count": len(latencies), "rss_mb_before": round(rss_before, 1), "rss_mb_during": round(rss_during, 1),
                   "supervisor_cpu_s": round(s.cpu_seconds(), 2)}
        if gap > 0.8:
            fail(f"the watchdog pings (every 0.5 s) stalled for {gap:.2f} s", **figures)
        if max(latencies) > 0.5:
            fail(f"root's status took {max(latencies):.2f} s under the flood", **figures)
        if rss_during - rss_before > 20:
            fail(f"RSS grew {rss_during - rss_before:.1f} MB", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def half_close_after_long_line():
    """Unread replies, an over-long line, then shutdown(SHUT_WR), then silence: no busy loop."""
    s = Supervisor(workers=4)
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(s.control)
        c.setblocking(False)
        sent = 0
        # Requests whose replies it never reads, a pause for them to be answered, then the over-long line.
        for payload, pause in ((b'{"cmd":"status"}\n' * 3000, 1.0), (b"x" * (70 * 1024), 0.0)):
            done = 0
            deadline = time.monotonic() + 2
            while done < len(payload) and time.monotonic() < deadline:
                try:
                    done += c.send(payload[done:done + 8192])
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break
            sent += done
            time.sleep(pause)
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        time.sleep(2.0)  # the replies that fit (256 KiB) are produced by now; what follows should be idle
        before = s.cpu_seconds()
        time.sleep(2)
        used = s.cpu_seconds() - before
        ok, took = timed_status(s, timeout=3)
        c.close()
        figures = {"sent": sent, "cpu_s_in_2s": round(used, 3), "status_s": round(took, 3)}
        if used > 0.3 or not ok:
            fail(f"the supervisor used {used:.2f} s of CPU in 2 s idle time with a half-closed client", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def emfile():
    """With its fd limit reached by connections, accept() must not spin and the owner must get in."""
    s = Supervisor(nofile=48)
    held = []
    try:
        for _ in range(60):
            try:
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(s.control)
                held.append(c)
            except OSError:
                break
        time.sleep(0.3)
        before = s.cpu_seconds()
        time.sleep(2)
        used = s.cpu_seconds() - before
        ok, took = timed_status(s, timeout=3)
        figures = {"connections": len(held), "cpu_s_in_2s": round(used, 3), "status_ok": ok, "status_s": round(took, 3)}
        if used > 0.3:
            fail(f"the supervisor used {used:.2f} s of CPU in 2 s at EMFILE", **figures)
        if not ok:
            fail("the owner's status was not answered at EMFILE", **figures)
        print(json.dumps(figures))
    finally:
        for c in held:
            c.close()
        s.stop()


def drip():
    """A line dripped one byte per 0.4 s: timed out 5 s after its first byte, not served."""
    s = Supervisor()
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(s.control)
        c.settimeout(0.05)
        start = time.monotonic()
        reply = b""
        for byte in b'{"cmd":"ping"}' + b" " * 40 + b"\n":
            try:
                c.send(bytes([byte]))
            except OSError:
                pass  # closed by the supervisor: its last word is still there to read
            try:
                reply += c.recv(4096)
            except (socket.timeout, OSError):
                pass
            if reply.endswith(b"\n") or time.monotonic() - start > 12:
                break
            time.sleep(0.35)
        took = time.monotonic() - start
        c.close()
        figures = {"reply": reply.decode(errors="replace").strip(), "after_s": round(took, 2)}
        if b"timed out waiting for a complete request line" not in reply or took > 6.5:
            fail("a dripped line was not timed out 5 s after its first byte", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def request_then_shutdown():
    """A complete request followed at once by shutdown(SHUT_WR) is executed and answered."""
    s = Supervisor()
    try:
        answers = []
        for _ in range(20):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(3)
            c.connect(s.control)
            c.sendall(b'{"cmd":"ping"}\n{"cmd":"version"}\n')
            c.shutdown(socket.SHUT_WR)
            data = b""
            try:
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            c.close()
            answers.append(data.count(b"\n"))
        figures = {"replies_per_connection": answers}
        if any(n != 2 for n in answers):
            fail("requests followed by shutdown(SHUT_WR) were not all answered", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def signal_after_reap():
    """After wait4 reaps a worker, no kill() may name its pid or process group (the pid may be someone
    else's by then). The supervisor runs under strace; a worker is killed, the pool replaced and stopped."""
    trace = tempfile.mktemp(prefix="hg-strace-")
    s = Supervisor(workers=2, wrapper=["strace", "-qq", "-o", trace, "-e", "trace=kill,wait4,waitid,pidfd_send_signal"])
    try:
        if not wait_for(lambda: len(s.children()) == 2, 10):
            fail("the workers did not start: " + s.log_text())
        victim = s.children()[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in s.children() and len(s.children()) == 2, 10)
        s.stop()
        lines = open(trace).read().splitlines()
    finally:
        s.stop()
        if os.path.exists(trace):
            os.unlink(trace)
    reaped, late = set(), []
    import re
    for line in lines:
        m = re.match(r"wait4\((-?\d+),.*= (\d+)$", line)
        if m and int(m.group(2)) > 0:
            reaped.add(int(m.group(2)))
            continue
        m = re.match(r"kill\((-?\d+), ", line)
        if m and abs(int(m.group(1))) in reaped:
            late.append(line)
    figures = {"reaped": len(reaped), "kills_after_reap": len(late), "example": late[:2]}
    if not reaped:
        fail("strace saw no reaped child: " + "\n".join(lines[-10:]), **figures)
    if late:
        fail("the supervisor signalled reaped pids: " + "; ".join(late[:3]), **figures)
    print(json.dumps(figures))


def start_with_control_dir(directory, timeout=10, bind=None, control=None):
    """Runs `hyperglass start` with its control socket in `directory`; (exit code or None if still running, log)."""
    argv = [os.path.join(PRODUCTS, "hyperglass"), "start", "--bind", bind or f"127.0.0.1:{free_port()}", "--control-socket",
            control or os.path.join(directory, "control.sock"), "--workers", "1", "--", TESTWORKER]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={"PATH": os.environ["PATH"]})
    try:
        out, _ = process.communicate(timeout=timeout)
        return process.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        for child in child_pids(process.pid):
            os.kill(child, signal.SIGKILL)
        process.kill()
        out, _ = process.communicate()
        return None, out.decode(errors="replace")


def foreign_runtime_dir():
    """A control-socket directory created first by another user is refused, with a message that says why."""
    base = tempfile.mkdtemp(prefix="hg-hostile-")
    os.chmod(base, 0o755)
    directory = os.path.join(base, "run")
    os.mkdir(directory, 0o755)
    os.chown(directory, READER[0], READER[1])
    try:
        code, log = start_with_control_dir(directory, timeout=3)
    finally:
        subprocess.run(["rm", "-rf", base])
    figures = {"exit": code, "log": log.strip().splitlines()[-1:] if log.strip() else []}
    if code in (None, 0) or f"owned by uid {READER[0]}" not in log:
        fail("a directory owned by another user was used for the control socket", **figures)
    print(json.dumps(figures))


def world_writable_runtime_dir():
    """A control-socket directory anyone may write to (not sticky) is refused; so is one for a unix: bind."""
    base = tempfile.mkdtemp(prefix="hg-hostile-")
    os.chmod(base, 0o755)
    directory = os.path.join(base, "run")
    os.mkdir(directory)
    os.chmod(directory, 0o777)
    try:
        code, log = start_with_control_dir(directory, timeout=3)
        bind_code, bind_log = start_with_control_dir(directory, timeout=3, bind=f"unix:{directory}/http.sock",
                                                     control=os.path.join(base, "control.sock"))
    finally:
        subprocess.run(["rm", "-rf", base])
    figures = {"exit": code, "log": log.strip().splitlines()[-1:] if log.strip() else [],
               "unix_bind_exit": bind_code, "unix_bind_log": bind_log.strip().splitlines()[-1:] if bind_log.strip() else []}
    if code in (None, 0) or "writable by other users" not in log:
        fail("a world-writable directory was used for the control socket", **figures)
    if bind_code in (None, 0) or "writable by other users" not in bind_log:
        fail("a world-writable directory was used for a unix: bind", **figures)
    print(json.dumps(figures))


def symlink_swap():
    """The socket file is swapped for a symlink right after bind() (strace holds the supervisor there
    for 0.8 s, as a lucky attacker's race would): no mode or owner change may reach the link's target."""
    base = tempfile.mkdtemp(prefix="hg-hostile-")
    os.chmod(base, 0o755)
    target = os.path.join(base, "precious")
    with open(target, "w") as f:
        f.write("secret\n")
    os.chmod(target, 0o600)
    sock = os.path.join(base, "control.sock")
    port = free_port()
    argv = ["strace", "-qq", "-o", "/dev/null", "-e", "trace=bind", "-e", "inject=bind:delay_exit=800000",
            os.path.join(PRODUCTS, "hyperglass"), "start", "--bind", f"127.0.0.1:{port}", "--control-socket", sock,
            "--control-group", "nogroup", "--workers", "1", "--", TESTWORKER]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    swapped = False
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if stat_is_socket(sock):
                    link = os.path.join(base, "link")
                    os.symlink(target, link)
                    os.rename(link, sock)
                    swapped = True
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        time.sleep(2.5)
    finally:
        for pid in child_pids(process.pid):
            for child in child_pids(pid):
                os.kill(child, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()
    info = os.stat(target)
    subprocess.run(["rm", "-rf", base])
    figures = {"swapped": swapped, "target_mode": oct(info.st_mode & 0o777), "target_gid": info.st_gid}
    if not swapped:
        fail("the socket never appeared to be swapped", **figures)
    if info.st_mode & 0o777 != 0o600 or info.st_gid != 0:
        fail("the supervisor changed the mode or group of a file a symlink pointed to", **figures)
    print(json.dumps(figures))


def impostor_worker():
    """A root worker sends WATCHDOG=trigger with its sibling's pid in SCM_CREDENTIALS: the sibling is untouched."""
    s = Supervisor(workers=2, worker=os.path.join(HERE, "impostor_worker.py"))
    try:
        if not wait_for(lambda: "sent WATCHDOG=trigger as pid" in s.log_text(), 10):
            fail("the impostor did not send: " + s.log_text())
        time.sleep(1.5)
        log = s.log_text()
        acted = "watchdog triggered by the worker" in log
        figures = {"acted_on_sibling": acted}
        if acted:
            fail("the supervisor acted on a worker because another one claimed its pid: " + log[-300:], **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def squat_worker_sockets():
    """Another user looks up the supervisor's worker sockets in /proc/net/unix, tries to reach each and to
    pre-bind the names the next workers will get; then workers are killed and must come back."""
    s = Supervisor(extra=["--health-path", "/health"], workers=1)
    try:
        wait_for(lambda: len(s.children()) == 1, 5)

        def attack():
            reached, squatted, names = 0, 0, []
            for line in open("/proc/net/unix").read().splitlines()[1:]:
                fields = line.split()
                # This supervisor's: its abstract names carry its pid, its files are under its directory.
                if len(fields) >= 8 and (f"hyperglass-{s.pid}-" in fields[7] or f"hyperglass/{s.pid}/" in fields[7]
                                         or fields[7].startswith(s.dir + "/workers.")):
                    names.append(fields[7])
            # The files' likely names, whether or not the listing shows them (the directory is 0755).
            for entry in os.listdir(s.dir):
                if entry.startswith("workers."):
                    names += [f"{s.dir}/{entry}/{kind}-0-1-1" for kind in ("health", "notify")]
            for name in set(names):
                address = "\0" + name[1:] if name.startswith("@") else name
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    try:
                        with socket.socket(socket.AF_UNIX, kind) as c:
                            if kind == socket.SOCK_DGRAM:
                                c.sendto(b"STATUS=hello", address)
                            else:
                                c.connect(address)
                            reached += 1
                    except OSError:
                        pass
                prefix = address.rsplit("-", 1)[0] if "health-" in address or "notify-" in address else None
                for generation in range(1, 30):
                    if not prefix:
                        break
                    try:
                        squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        squatter.bind(f"{prefix}-{generation}")
                        squatter.listen(1)
                        squatted += 1
                        held.append(squatter)
                    except OSError:
                        squatter.close()
            return {"names": len(set(names)), "reached": reached, "squatted": squatted}
        held = []
        read, write = os.pipe()
        attacker = hostile_child(READER, lambda: (os.write(write, json.dumps(attack()).encode() + b"\n"), time.sleep(60)))
        os.close(write)
        seen = json.loads(os.read(read, 4096) or b"{}")
        os.close(read)
        restarted = True
        for _ in range(2):
            before = s.children()
            for pid in before:
                os.kill(pid, signal.SIGKILL)
            restarted = restarted and wait_for(lambda: len(s.children()) == 1 and s.children() != before, 5)
        log = s.log_text()
        end(attacker)
        figures = dict(seen, restarted=restarted, address_in_use="Address already in use" in log)
        if seen.get("reached") or seen.get("squatted") or not restarted or "Address already in use" in log:
            fail("another user reached or squatted the workers' private sockets", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def rescale_while_draining():
    """A slot removed and added again while its old worker still drains gets new sockets, not the old names."""
    s = Supervisor(extra=["--health-path", "/health", "--graceful-timeout", "10s"], workers=2, worker_args=["--ignore-term"])
    try:
        down = s.request({"v": 1, "cmd": "workers", "set": 1})
        up = s.request({"v": 1, "cmd": "workers", "set": 2, "wait": True}, timeout=8)
        log = s.log_text()
        figures = {"down": down.get("ok"), "up": up.get("ok"), "address_in_use": "Address already in use" in log}
        if not up.get("ok") or "Address already in use" in log:
            fail("the re-added slot did not start while the old worker drained: " + log[-400:], **figures)
        print(json.dumps(figures))
    finally:
        for child in s.children():
            os.kill(child, signal.SIGKILL)
        s.stop()


def stat_is_socket(path):
    import stat as st
    return st.S_ISSOCK(os.lstat(path).st_mode)


SCENARIOS = {f.__name__: f for f in [idle_lockout, pipelined_flood, half_close_after_long_line, emfile, drip, request_then_shutdown, signal_after_reap,
                                          foreign_runtime_dir, world_writable_runtime_dir, symlink_swap,
                                          impostor_worker, squat_worker_sockets, rescale_while_draining]}

if __name__ == "__main__":
    if os.getuid() != 0:
        print("{}")
        print("SKIP: needs root to act as other users", file=sys.stderr)
        sys.exit(77)
    SCENARIOS[sys.argv[2]]()
