"""What every hostile scenario needs: a real `hyperglass start` (support.PRODUCTS is set by hostile.py),
users to play, bounded waits. Every process started is ended by pid."""
import json, os, resource, shutil, signal, socket, stat, subprocess, sys, tempfile, threading, time

PRODUCTS = None  # the directory holding the built binaries
HERE = os.path.dirname(os.path.abspath(__file__))
TESTWORKER = os.path.join(HERE, "..", "Fixtures", "testworker.py")
sys.path.insert(0, os.path.join(HERE, "..", "..", "PythonSupport"))
from control import request as control_request  # noqa: E402
READER = (12345, 65534)  # a control_group (nogroup) member: read-only, as the attacker


def fail(message, **figures):
    print(json.dumps(figures))
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class Supervisor:
    """`hyperglass start` with a notify socket we own, so its WATCHDOG=1 pings can be timed."""

    def __init__(self, extra=(), workers=1, watchdog_usec=None, nofile=None, worker_args=(), env=None, wrapper=(), worker=TESTWORKER):
        """worker=None: the command comes from the configuration (`--config` in extra), so a reload can change it."""
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
                "--workers", str(workers), "--control-group", "nogroup", *extra, *(["--", worker, *worker_args] if worker else [])]
        self.log = open(os.path.join(self.dir, "supervisor.log"), "w+")

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.process = subprocess.Popen([*wrapper, *argv], env=environment, stdout=self.log, stderr=self.log, preexec_fn=limits)
        self.pid = self.process.pid
        if wrapper:  # the supervisor is the wrapper's child, once it has exec'ed
            exe = os.path.join(PRODUCTS, "hyperglass")
            def supervisor_pid():
                for pid in [self.process.pid] + child_pids(self.process.pid):  # a wrapper may exec it
                    try:
                        if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(exe):
                            return pid
                    except OSError:
                        pass
                return None
            wait_for(lambda: supervisor_pid() is not None, 5)
            self.pid = supervisor_pid() or self.process.pid
        if not wait_for(lambda: self.request({"cmd": "ping"}, timeout=1).get("ok") is True, 10):
            log = self.log_text()
            self.stop()
            fail("the supervisor did not answer ping at start: " + log)

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
        return control_request(self.control, message, timeout)

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
        if self.notify:
            self.notify.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def child_pids(pid):
    try:
        return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exhaust_fds(supervisor, most=80):
    """Control connections held open until the supervisor (started with a small `nofile`) is out of fds;
    the caller closes them."""
    held = []
    for _ in range(most):
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(1)
            c.connect(supervisor.control)
            held.append(c)
        except OSError:
            break
    return held


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


def stat_is_socket(path):
    return stat.S_ISSOCK(os.lstat(path).st_mode)
