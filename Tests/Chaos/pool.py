"""A real `hyperglass start` for the chaos test: our child, with a NOTIFY_SOCKET we own (WATCHDOG_USEC
set, so it pings WATCHDOG=1 at half that interval; notify_sink.py reads it) and a control socket we ask directly."""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "PythonSupport"))
from control import request as control_request  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Supervisor:
    def __init__(self, bin_dir, workers, flags, worker_command, watchdog_usec):
        self.dir = tempfile.mkdtemp(prefix="hg-chaos-")
        self.port = free_port()
        self.control = os.path.join(self.dir, "control.sock")
        self.watchdog_usec = watchdog_usec
        self.notify_path = os.path.join(self.dir, "notify.sock")
        self.notify_log = os.path.join(self.dir, "notify.log")
        self.offset = time.time() - time.monotonic()  # to turn the kernel's CLOCK_REALTIME stamps into monotonic
        self.sink = subprocess.Popen([sys.executable, os.path.join(HERE, "notify_sink.py"), self.notify_path, self.notify_log],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.sink.stdout.readline()  # "ready": bound
        config = os.path.join(self.dir, "supervisor.conf")
        open(config, "w").close()  # the host's /etc/hyperglass/supervisor.conf must not leak in
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERGLASS_", "LISTEN_")) and k != "NOTIFY_SOCKET"}
        env.update(HYPERGLASS_CONFIG=config, NOTIFY_SOCKET=self.notify_path, WATCHDOG_USEC=str(watchdog_usec))
        argv = [os.path.join(bin_dir, "hyperglass"), "start", "--bind", f"127.0.0.1:{self.port}",
                "--control-socket", self.control, "--workers", str(workers), *flags, "--", *worker_command]
        self.log = open(os.path.join(self.dir, "supervisor.log"), "w+")
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.pid = self.process.pid

    @property
    def pings(self):
        """Monotonic arrival times of WATCHDOG=1 (stamped by the kernel as each datagram arrived)."""
        times = []
        with open(self.notify_log, errors="replace") as f:
            for line in f:
                stamp, _, message = line.rstrip("\n").partition(" ")
                if "WATCHDOG=1" in message.split("|"):
                    times.append(float(stamp) - self.offset)
        return times

    def request(self, message, timeout=2.0):
        """One request on a new connection; the reply as a dict ({} when there is none)."""
        return control_request(self.control, message, timeout)

    def ready_count(self):
        return self.request({"cmd": "workers"}).get("ready")

    def status(self, timeout=2.0):
        return self.request({"cmd": "status"}, timeout)

    def alive(self):
        return self.process.poll() is None

    def ping_gaps(self, since, until, excluded):
        """Each gap between WATCHDOG=1 pings in [since, until] as (start, end, seconds of it inside the
        `excluded` intervals, our SIGSTOPs of the supervisor); None when there was no ping at all."""
        times = sorted(t for t in self.pings if since <= t <= until)
        if not times:
            return None
        edges = [since] + times + [until]
        return [(a, b, sum(max(0.0, min(b, end) - max(a, start)) for start, end in excluded))
                for a, b in zip(edges, edges[1:])]

    def log_tail(self, chars=3000):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()[-chars:]

    def log_lines(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read().splitlines()

    def stop(self, timeout=15):
        """SIGTERM (a drain), its exit status, and how long it took; SIGKILL if it does not exit."""
        start = time.monotonic()
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)  # in case a failure left it stopped
            os.kill(self.pid, signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
        return code, time.monotonic() - start

    def cleanup(self):
        if self.sink.poll() is None:
            self.sink.stdin.close()
            try:
                self.sink.wait(5)
            except subprocess.TimeoutExpired:
                self.sink.kill()
                self.sink.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
