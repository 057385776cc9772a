"""A real `hyperglass start` for the chaos test: our child, with a NOTIFY_SOCKET we own (WATCHDOG_USEC
set, so it pings WATCHDOG=1 at half that interval) and a control socket we ask directly."""
import json, os, shutil, signal, socket, struct, subprocess, tempfile, threading, time

SO_TIMESTAMPNS = 35  # Linux: the kernel stamps each datagram as it arrives (CLOCK_REALTIME)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


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
        self.pings = []  # monotonic arrival times of WATCHDOG=1 (kernel timestamps)
        self.messages = 0
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.notify.bind(os.path.join(self.dir, "notify.sock"))
        self.notify.settimeout(0.2)
        self.listening = True
        self.recorder = threading.Thread(target=self._record, daemon=True)
        self.recorder.start()
        config = os.path.join(self.dir, "supervisor.conf")
        open(config, "w").close()  # the host's /etc/hyperglass/supervisor.conf must not leak in
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERGLASS_", "LISTEN_")) and k != "NOTIFY_SOCKET"}
        env.update(HYPERGLASS_CONFIG=config, NOTIFY_SOCKET=self.notify.getsockname(), WATCHDOG_USEC=str(watchdog_usec))
        argv = [os.path.join(bin_dir, "hyperglass"), "start", "--bind", f"127.0.0.1:{self.port}",
                "--control-socket", self.control, "--workers", str(workers), *flags, "--", *worker_command]
        self.log = open(os.path.join(self.dir, "supervisor.log"), "w+")
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.pid = self.process.pid

    def _record(self):
        offset = time.time() - time.monotonic()
        while self.listening:
            try:
                data, ancillary, _, _ = self.notify.recvmsg(4096, socket.CMSG_SPACE(16))
            except (socket.timeout, OSError):
                continue
            arrived = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    arrived = seconds + nanoseconds / 1e9 - offset
            self.messages += 1
            if b"WATCHDOG=1" in data.split(b"\n"):
                self.pings.append(arrived)

    def request(self, message, timeout=2.0):
        """One request on a new connection; the reply as a dict ({} when there is none)."""
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

    def ready_count(self):
        return self.request({"cmd": "workers"}).get("ready")

    def status(self):
        return self.request({"cmd": "status"})

    def alive(self):
        return self.process.poll() is None

    def largest_ping_gap(self, since, until, excluded):
        """The largest gap between WATCHDOG=1 pings in [since, until], less the time inside `excluded`
        intervals (our SIGSTOPs of the supervisor): how long systemd would have waited, had the
        supervisor not been stopped on purpose."""
        times = sorted(t for t in self.pings if since <= t <= until)
        if not times:
            return float("inf"), 0, None
        edges = [since] + times + [until]
        largest, where = 0.0, None
        for a, b in zip(edges, edges[1:]):
            stopped = sum(max(0.0, min(b, end) - max(a, start)) for start, end in excluded)
            if b - a - stopped > largest:
                largest, where = b - a - stopped, (a - since, b - since, round(stopped, 3))
        return largest, len(times), where

    def ping_after_resume(self, resumes):
        """The longest wait from one of our SIGCONTs of the supervisor to its next WATCHDOG=1."""
        times = sorted(self.pings)
        waits = [min((t - r for t in times if t >= r), default=float("inf")) for r in resumes]
        return max(waits, default=0.0)

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
        self.listening = False
        self.recorder.join(1)
        self.notify.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
