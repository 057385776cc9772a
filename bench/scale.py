#!/usr/bin/env python3
"""The supervisor at 16 / 256 / 1,000 workers (issue 23, item 2) and under a /metrics flood (issue 25, item 6).

For each pool size N, on a fresh `hyperglass start` with the bundled worker (default configuration,
`metrics_bind` on loopback), it prints one block:
  scale     4 -> N with `workers N --wait`, while a pinger sends `ping` back to back on the control
            socket: the time, the slowest ping, the supervisor's CPU time meanwhile;
  rss       the supervisor's VmRSS once the pool is ready, and its CPU time since start;
  status    `status --json` on the socket: latency (median, max of 20) and supervisor CPU per request;
  scrape    GET /metrics: a fresh one (1.1 s apart) and repeated ones (back to back), latency and
            supervisor CPU per scrape; the `metrics` control request (always rendered afresh) likewise;
  kill      min(100, N) workers SIGKILLed at once: the time until N are ready again;
  idle      the supervisor's context switches over IDLE seconds with no traffic (0 means no wake-up);
  flood     FLOOD_CLIENTS processes scraping /metrics back to back for FLOOD seconds, while the pinger
            runs: ping p50 / p99 / max, scrapes answered, the supervisor's CPU share.
"Supervisor CPU" is time on a CPU from /proc/PID/schedstat (nanoseconds), so it does not count time
spent waiting for a CPU on a loaded machine; latencies do. The load average is printed with each block.

usage: bench/scale.py [--bin DIR] [--sizes 16,256,1000] [--steps scale,rss,status,scrape,kill,idle,flood]
                      [--check | --check-cpu]
  --bin    the directory holding hyperglass, hyperglassctl and hyperglass-worker (default
           .build/release, as `make release` builds them)
  --check  exit 1 unless: flood ping p99 < 5 ms, a repeated scrape costs the supervisor <= 1 ms, and
           `status --json` and a fresh scrape cost it <= 30 ms (the goals of both issues).
  --check-cpu  the same goals but the flood's ping p99, which a loaded machine stretches: the supervisor's
           CPU time per request is what the test suite checks (Tests/IntegrationTests/MetricsFloodTests).
Environment: IDLE (seconds, default 5), FLOOD (seconds, default 5), FLOOD_CLIENTS (default 2).
Every process it starts is ended by pid; every wait is bounded.
"""
import json, os, resource, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Tests", "PythonSupport"))
from control import request as control_request  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path="/metrics", timeout=10):
    """One GET on a new connection: (status, body bytes); (0, b"") when it failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = bytearray()
            while True:
                chunk = s.recv(262144)
                if not chunk:
                    break
                data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        return int(head[9:12] or 0), body
    except (OSError, ValueError):
        return 0, b""


def flood_client(port, seconds):
    """The flood itself (run in its own process, so it never holds the pinger's GIL): scrapes back to back."""
    end = time.monotonic() + seconds
    answered = refused = 0
    while time.monotonic() < end:
        status, _ = http_get(port, timeout=5)
        if status == 200:
            answered += 1
        else:
            refused += 1
    print(json.dumps({"answered": answered, "refused": refused}), flush=True)


def percentile(values, share):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * share))] if values else float("nan")


def load_average():
    return open("/proc/loadavg").read().split()[0]


class Supervisor:
    def __init__(self, bindir, workers):
        self.dir = tempfile.mkdtemp(prefix="hg-scale-")
        self.control = os.path.join(self.dir, "control.sock")
        self.port, self.metrics_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HYPERGLASS_") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")}
        self.log = open(os.path.join(self.dir, "supervisor.log"), "w+")

        def raise_nofile():  # 1,000 workers need more fds than a soft limit of 1024
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.process = subprocess.Popen(
            [os.path.join(bindir, "hyperglass"), "start", "--bind", f"127.0.0.1:{self.port}", "--control-socket", self.control,
             "--metrics-bind", f"127.0.0.1:{self.metrics_port}", "--workers", str(workers), "--max-workers", "1024"],
            env=env, stdout=self.log, stderr=self.log, preexec_fn=raise_nofile)
        self.pid = self.process.pid
        if not self.wait_ready(workers, 60):
            self.stop()
            raise SystemExit(f"the supervisor did not get {workers} workers ready: {self.log_text()}")

    def request(self, message, timeout=30):
        return control_request(self.control, message, timeout)

    def ready(self):
        return self.request({"cmd": "workers"}, timeout=5).get("ready")

    def wait_ready(self, n, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ready() == n:
                return True
            time.sleep(0.02)
        return False

    def cpu_ns(self):
        """Time on a CPU, all threads (schedstat's first field)."""
        total = 0
        for task in os.listdir(f"/proc/{self.pid}/task"):
            with open(f"/proc/{self.pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        return total

    def status_field(self, name):
        for line in open(f"/proc/{self.pid}/status"):
            if line.startswith(name + ":"):
                return int(line.split()[1])
        return 0

    def switches(self):
        return self.status_field("voluntary_ctxt_switches") + self.status_field("nonvoluntary_ctxt_switches")

    def workers(self):
        pids = []
        for task in os.listdir(f"/proc/{self.pid}/task"):
            pids += [int(p) for p in open(f"/proc/{self.pid}/task/{task}/children").read().split()]
        return pids

    def log_text(self):
        self.log.flush()
        return open(self.log.name).read()[-2000:]

    def stop(self):
        workers = self.workers() if self.process.poll() is None else []
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(5)
        for pid in workers:  # anything a killed supervisor left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", self.dir])


class Pinger:
    """`ping` back to back on one control connection, one in flight at a time, in a thread."""

    def __init__(self, path):
        self.path, self.times, self.stop_event = path, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        time.sleep(0.05)

    def run(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(30)
            c.connect(self.path)
            line = b'{"cmd":"ping"}\n'
            while not self.stop_event.is_set():
                t0 = time.monotonic()
                c.sendall(line)
                buffer = b""
                while not buffer.endswith(b"\n"):
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                self.times.append(time.monotonic() - t0)

    def stop(self):
        self.stop_event.set()
        self.thread.join(30)
        return self.times


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def measure(bindir, n, steps, figures):
    start = min(4, n)
    sup = Supervisor(bindir, start)
    try:
        print(f"## {n} workers (load average {load_average()})", flush=True)
        if "scale" in steps or n != start:
            pinger = Pinger(sup.control)
            c0, t0 = sup.cpu_ns(), time.monotonic()
            reply = sup.request({"cmd": "workers", "set": n, "wait": True}, timeout=120)
            took, c1 = time.monotonic() - t0, sup.cpu_ns()
            pings = pinger.stop()
            if not reply.get("ok"):
                raise SystemExit(f"workers {n} --wait failed: {reply} {sup.log_text()}")
            figures["scale_seconds"] = took
            print(f"scale   {start} -> {n} ready in {took:.2f} s; slowest ping meanwhile {ms(max(pings))} "
                  f"({len(pings)} pings, median {ms(percentile(pings, 0.5))}); supervisor CPU {(c1 - c0) / 1e6:.0f} ms", flush=True)
        time.sleep(1)
        if "rss" in steps:
            print(f"rss     supervisor VmRSS {sup.status_field('VmRSS')} kB; CPU since start {sup.cpu_ns() / 1e6:.0f} ms", flush=True)
        if "status" in steps:
            latencies, size = [], 0
            c0 = sup.cpu_ns()
            for _ in range(20):
                t0 = time.monotonic()
                reply = sup.request({"cmd": "status"})
                latencies.append(time.monotonic() - t0)
                size = len(json.dumps(reply))
            per = (sup.cpu_ns() - c0) / 20 / 1e6
            figures["status_cpu_ms"] = per
            print(f"status  status --json: median {ms(percentile(latencies, 0.5))}, max {ms(max(latencies))} "
                  f"({size // 1024} KiB); supervisor CPU {per:.2f} ms per request", flush=True)
        if "scrape" in steps:
            fresh, fresh_cpu = [], []
            for _ in range(5):
                time.sleep(1.1)
                c0, t0 = sup.cpu_ns(), time.monotonic()
                status, body = http_get(sup.metrics_port)
                fresh.append(time.monotonic() - t0)
                fresh_cpu.append((sup.cpu_ns() - c0) / 1e6)
                assert status == 200, status
            repeated = []
            c0 = sup.cpu_ns()
            for _ in range(200):
                t0 = time.monotonic()
                http_get(sup.metrics_port)
                repeated.append(time.monotonic() - t0)
            repeated_cpu = (sup.cpu_ns() - c0) / 200 / 1e6
            control, c0 = [], sup.cpu_ns()
            for _ in range(10):
                t0 = time.monotonic()
                sup.request({"cmd": "metrics"})
                control.append(time.monotonic() - t0)
            control_cpu = (sup.cpu_ns() - c0) / 10 / 1e6
            figures["fresh_scrape_cpu_ms"] = percentile(fresh_cpu, 0.5)
            figures["repeated_scrape_cpu_ms"] = repeated_cpu
            print(f"scrape  fresh: median {ms(percentile(fresh, 0.5))}, supervisor CPU {percentile(fresh_cpu, 0.5):.2f} ms "
                  f"({len(body) // 1024} KiB); repeated: median {ms(percentile(repeated, 0.5))}, supervisor CPU "
                  f"{repeated_cpu:.3f} ms per scrape; control `metrics`: median {ms(percentile(control, 0.5))}, CPU {control_cpu:.2f} ms", flush=True)
        if "kill" in steps:
            victims = sup.workers()[:100]
            t0 = time.monotonic()
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            # Until the pool is whole again: the ready count is back to N and the victims are gone.
            end = time.monotonic() + 120
            while time.monotonic() < end:
                if sup.ready() == n and not set(victims) & set(sup.workers()):
                    break
                time.sleep(0.01)
            print(f"kill    {len(victims)} SIGKILLed at once: all {n} ready again in {time.monotonic() - t0:.2f} s", flush=True)
            time.sleep(1)
        if "idle" in steps:
            idle = float(os.environ.get("IDLE", "5"))
            time.sleep(0.5)
            s0 = sup.switches()
            time.sleep(idle)
            print(f"idle    context switches over {idle:.0f} s idle: {sup.switches() - s0}", flush=True)
        if "flood" in steps:
            seconds, clients = float(os.environ.get("FLOOD", "5")), int(os.environ.get("FLOOD_CLIENTS", "2"))
            floods = [subprocess.Popen([sys.executable, __file__, "--flood-client", str(sup.metrics_port), str(seconds)],
                                       stdout=subprocess.PIPE, text=True) for _ in range(clients)]
            time.sleep(0.3)
            pinger = Pinger(sup.control)
            c0, t0 = sup.cpu_ns(), time.monotonic()
            time.sleep(seconds - 0.8)
            pings = pinger.stop()
            share = (sup.cpu_ns() - c0) / 1e9 / (time.monotonic() - t0)
            answered = refused = 0
            for flood in floods:
                try:
                    out, _ = flood.communicate(timeout=seconds + 30)
                    result = json.loads(out.strip().splitlines()[-1])
                    answered += result["answered"]
                    refused += result["refused"]
                except (subprocess.TimeoutExpired, ValueError, IndexError):
                    flood.kill()
                    flood.wait()
            figures["flood_ping_p99_ms"] = percentile(pings, 0.99) * 1000
            print(f"flood   {clients} clients scraping /metrics for {seconds:.0f} s: {answered} answered, {refused} refused; "
                  f"ping p50 {ms(percentile(pings, 0.5))}, p99 {ms(percentile(pings, 0.99))}, max {ms(max(pings))} "
                  f"({len(pings)} pings); supervisor CPU {share * 100:.0f} % (load average {load_average()})", flush=True)
    finally:
        sup.stop()


def main(argv):
    if argv[:1] == ["--flood-client"]:
        return flood_client(int(argv[1]), float(argv[2]))
    bindir = os.path.join(HERE, "..", ".build", "release")
    sizes, steps, check = [16, 256, 1000], "scale,rss,status,scrape,kill,idle,flood", False
    i = 0
    while i < len(argv):
        if argv[i] == "--bin":
            bindir, i = argv[i + 1], i + 1
        elif argv[i] == "--sizes":
            sizes, i = [int(x) for x in argv[i + 1].split(",")], i + 1
        elif argv[i] == "--steps":
            steps, i = argv[i + 1], i + 1
        elif argv[i] == "--check":
            check = "all"
        elif argv[i] == "--check-cpu":
            check = "cpu"
        else:
            raise SystemExit(__doc__)
        i += 1
    steps = set(steps.split(","))
    print(f"# scale: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} CPUs, {os.uname().release}, {os.path.abspath(bindir)}", flush=True)
    failures = []
    for n in sizes:
        figures = {}
        measure(bindir, n, steps, figures)
        if check:
            goals = [("repeated_scrape_cpu_ms", 1, "a repeated scrape"),
                     ("fresh_scrape_cpu_ms", 30, "a fresh scrape"), ("status_cpu_ms", 30, "status --json")]
            if check == "all":  # wall-clock: a loaded machine stretches it, so the test suite checks CPU time only
                goals.append(("flood_ping_p99_ms", 5, "ping p99 under a /metrics flood"))
            failures += [f"{n} workers: {what} took {figures[key]:.2f} ms (goal < {limit} ms)"
                         for key, limit, what in goals if key in figures and figures[key] >= limit]
    if failures:
        print("FAIL: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
