#!/usr/bin/env python3
"""Three hosts behind HAProxy, each a booted systemd 252 with the Debian package, under HTTP and WebSocket load.

The hosts are ../shared/tools/systemd-testbed/testbed.sh machines hg-fleet-1..3. They share this
machine's network, so each binds its own application port (a drop-in for hyperglass.socket) and its own
metrics_bind, with lame_duck set (a drop-in for hyperglass.service, written before the package is
installed, so the package starts them on the right ports). HAProxy (Debian's package; installed if
missing) runs here, in front of them, with deploy/haproxy/haproxy.cfg itself: the addresses come from
the environment, as /etc/default/haproxy gives them in production.

Clients, all through HAProxy on 127.0.0.1: GETs on fresh connections and on one keep-alive connection,
back to back, and WebSockets that send a message every 0.3 s and reconnect as soon as one closes. Steps:

  upgrade host1..3   `apt install ./newer.deb` on each host in turn, the next once HAProxy has the
                     previous one back UP: 0 failed requests. The package upgrades the supervisor in
                     place (same MainPID, same workers): its WebSockets stay open and HAProxy has nothing
                     to notice. Where it restarts instead (the postinst says why), WebSockets on the host
                     close with 1001, none with 1006, and reconnect at once
  stop host2         `systemctl stop hyperglass` (lame duck, then drain), then start: 0 failed requests
  drain host1        `set server hyperglass/host1 state drain` on HAProxy's runtime API: no request
                     begins on it, its WebSockets stay open; then stop (1001), start, `state ready`
  kill host3         SIGKILL to the machine's PID 1 (every process of it dies, nothing drains), then a
                     fresh boot and install: failures only among requests in flight on it, and HAProxy
                     marks it DOWN within inter × fall + timeout check (read from the configuration)

It prints a table of what the clients saw in each step and fails when a requirement is not met.
Skips (exit 0, saying why) when not root or the testbed is absent. Always takes the hosts down.
  python3 Tests/Fleet/fleet_test.py [--scratch-path .build] [--debs DIR]
"""
import argparse, csv, http.client, io, os, re, shlex, signal, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Package"))
import package_test as package  # noqa: E402  (make deb, Failure, check: the package test's own)
try:
    from websockets.exceptions import ConnectionClosed
except ImportError:  # main() skips, saying why
    ConnectionClosed = None

TESTBED = package.TESTBED
TESTBED_DIR = os.environ.get("TESTBED_DIR", "/var/lib/systemd-testbed")
HAPROXY_CFG = os.path.join(ROOT, "deploy", "haproxy", "haproxy.cfg")
LB_PORT = 28400
LB = ("127.0.0.1", LB_PORT)
LAME_DUCK = 5.0
Failure, check = package.Failure, package.check


def log(text):
    print(f"fleet: {text}", flush=True)


def now():
    return time.monotonic()


def run(argv, env=None, timeout=120, check_rc=True, **kw):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, **kw)
    if check_rc and result.returncode != 0:
        raise Failure(f"{shlex.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def haproxy_timing():
    """inter, fall and timeout check as the configuration sets them (seconds), to hold HAProxy to them."""
    text = open(HAPROXY_CFG).read()
    seconds = lambda v: float(v[:-2]) / 1000 if v.endswith("ms") else float(v.rstrip("s"))
    inter = seconds(re.search(r"^\s*default-server\b.*\binter (\S+)", text, re.M).group(1))
    fall = int(re.search(r"^\s*default-server\b.*\bfall (\d+)", text, re.M).group(1))
    timeout_check = seconds(re.search(r"^\s*timeout check (\S+)", text, re.M).group(1))
    return inter, fall, timeout_check


class Host:
    """One testbed machine with the package: its application port and metrics port are its own."""

    def __init__(self, index):
        self.index = index
        self.name = f"hg-fleet-{index}"
        self.server = f"host{index}"
        self.app_port = LB_PORT + index
        self.metrics_port = LB_PORT + 10 + index
        # The host's network (no TESTBED_PRIVATE_NETWORK): HAProxy here reaches the guests' ports.
        # The package's binaries are static: no toolchain bind.
        self.env = dict(os.environ, TESTBED_NAME=self.name, TESTBED_BIND_RO="")

    def tb(self, *args, timeout=120, check_rc=True):
        return run([TESTBED, *args], env=self.env, timeout=timeout, check_rc=check_rc)

    def sh(self, command, timeout=60, check_rc=True):
        return self.tb("exec", "sh", "-c", command, timeout=timeout, check_rc=check_rc)

    def provision(self, debs, version):
        """A fresh machine: boot, the drop-ins first (so the package starts on this host's ports), the
        package with `apt install`."""
        self.tb("up", timeout=600)
        for deb in debs:
            self.tb("copy-in", deb, "/tmp/" + os.path.basename(deb))
        self.sh("test -e /etc/hosts || printf '127.0.0.1\\tlocalhost\\n' > /etc/hosts")
        self.sh("mkdir -p /etc/systemd/system/hyperglass.socket.d /etc/systemd/system/hyperglass.service.d && "
                f"printf '[Socket]\\nListenStream=\\nListenStream=127.0.0.1:{self.app_port}\\n' "
                "> /etc/systemd/system/hyperglass.socket.d/fleet.conf && "
                f"printf '[Service]\\nEnvironment=HYPERGLASS_METRICS_BIND=127.0.0.1:{self.metrics_port} "
                f"HYPERGLASS_LAME_DUCK={LAME_DUCK:g}s HYPERGLASS_WORKERS=2\\n' "
                "> /etc/systemd/system/hyperglass.service.d/fleet.conf")
        self.install(version)

    def install(self, deb):
        """`apt install ./x.deb`: returns once the service restarted (postinst) and is ready."""
        self.sh(f"cd /tmp && apt install -y -q ./{os.path.basename(deb)}", timeout=240)

    def main_pid(self):
        return self.sh("systemctl show -p MainPID --value hyperglass").stdout.strip()

    def version(self):
        return self.sh(f"dpkg-query -W -f='${{Version}}' {package.PACKAGE}").stdout.strip()

    def kill_machine(self):
        """SIGKILL to the guest's PID 1: the kernel kills every process of its PID namespace at once
        (nothing drains, every socket closes), and nspawn with it."""
        nspawn = int(open(os.path.join(TESTBED_DIR, f"state-{self.name}", "nspawn.pid")).read())
        children = open(f"/proc/{nspawn}/task/{nspawn}/children").read().split()
        leader = next(int(p) for p in children if open(f"/proc/{p}/comm").read().strip() == "systemd")
        os.kill(leader, signal.SIGKILL)
        os.kill(nspawn, signal.SIGKILL)

    def down(self):
        self.tb("down", timeout=180, check_rc=False)


class HAProxy:
    """haproxy -db -f deploy/haproxy/haproxy.cfg, the hosts' addresses from the environment."""

    def __init__(self, hosts, workdir):
        self.socket_path = os.path.join(workdir, "admin.sock")
        self.log_path = os.path.join(workdir, "haproxy.log")
        env = dict(os.environ, HYPERGLASS_LB_BIND=f"{LB[0]}:{LB[1]}", HYPERGLASS_LB_ADMIN_SOCKET=self.socket_path,
                   HYPERGLASS_LB_LOG="stdout")
        for host in hosts:
            env[f"HYPERGLASS_HOST{host.index}"] = f"127.0.0.1:{host.app_port}"
            env[f"HYPERGLASS_HOST{host.index}_METRICS"] = str(host.metrics_port)
        self.env = env
        run(["haproxy", "-c", "-q", "-f", HAPROXY_CFG], env=env)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(["haproxy", "-db", "-f", HAPROXY_CFG], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = now() + 10
        while not os.path.exists(self.socket_path):
            check(self.process.poll() is None and now() < deadline, f"haproxy did not start:\n{open(self.log_path).read()}")
            time.sleep(0.05)

    def command(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.socket_path)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self):
        """{server: row} for the backend's servers, from `show stat`."""
        text = self.command("show stat").lstrip("# ")
        return {row["svname"]: row for row in csv.DictReader(io.StringIO(text))
                if row["pxname"] == "hyperglass" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


class Watch(threading.Thread):
    """Every 100 ms: each server's state in HAProxy, its count of failed tries (connection errors, retries,
    redispatches: each a request HAProxy sent it that failed), and each host's own /readyz, with the time
    each changed."""

    def __init__(self, haproxy, hosts):
        super().__init__(daemon=True)
        self.haproxy, self.hosts = haproxy, hosts
        self.state = {}  # server -> HAProxy status
        self.ready = {}  # server -> /readyz status (or "down")
        self.failed_tries = {}  # server -> econ + wretr + wredis
        self.changes = []  # (time, server, "lb" | "readyz", value)
        self.halt = threading.Event()

    def readyz(self, host):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", host.metrics_port, timeout=0.5)
            conn.request("GET", "/readyz")
            status = conn.getresponse().status
            conn.close()
            return str(status)
        except Exception:
            return "down"

    def run(self):
        while not self.halt.is_set():
            try:
                stats = self.haproxy.stats()
            except Exception:
                stats = {}
            t = now()
            for host in self.hosts:
                status = stats.get(host.server, {}).get("status")
                if status and status != self.state.get(host.server):
                    self.state[host.server] = status
                    self.changes.append((t, host.server, "lb", status))
                row = stats.get(host.server)
                if row:
                    tries = sum(int(row[k] or 0) for k in ("econ", "wretr", "wredis"))
                    if tries != self.failed_tries.get(host.server):
                        self.failed_tries[host.server] = tries
                        self.changes.append((t, host.server, "failed-tries", tries))
                ready = self.readyz(host)
                if ready != self.ready.get(host.server):
                    self.ready[host.server] = ready
                    self.changes.append((now(), host.server, "readyz", ready))
            self.halt.wait(0.1)

    def last(self, server, kind, after, before):
        return max((t for t, s, k, _ in self.changes if s == server and k == kind and after <= t < before), default=None)

    def first(self, server, kind, predicate, after):
        return next((t for t, s, k, v in self.changes if s == server and k == kind and t >= after and predicate(v)), None)

    def wait(self, server, status, timeout):
        deadline = now() + timeout
        while self.state.get(server) != status:
            check(now() < deadline, f"HAProxy did not report {server} {status} within {timeout:.0f}s "
                                    f"(it says {self.state.get(server)})")
            time.sleep(0.05)
        return now()


class Clients:
    """The load through HAProxy. Every outcome is recorded with its time, to be counted per step."""

    def __init__(self, fresh=2, websockets_open=9):
        from websockets.sync.client import connect
        self.connect_ws = connect
        self.http = []  # (started, client, ok, server, error)
        self.ws_closes = []  # (time, server, code)
        self.ws_reconnects = []  # (time, seconds from close to open again, new server)
        self.ws_problems = []  # (time, server, what): a missing echo, a failed connect
        self.ws_server = {}  # id -> server it is on now
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.fresh_loop, daemon=True) for _ in range(fresh)]
        self.threads.append(threading.Thread(target=self.keepalive_loop, daemon=True))
        self.threads += [threading.Thread(target=self.ws_loop, args=(i,), daemon=True) for i in range(websockets_open)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.halt.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def record(self, started, client, response=None, error=None):
        with self.lock:
            if response is not None and response.status == 200:
                self.http.append((started, client, True, response.getheader("X-Served-By"), None))
            else:
                self.http.append((started, client, False, None, error or f"HTTP {response.status}"))

    def fresh_loop(self):
        while not self.halt.is_set():
            started = now()
            try:
                conn = http.client.HTTPConnection(*LB, timeout=10)
                conn.request("GET", "/whoami")
                response = conn.getresponse()
                response.read()
                conn.close()
                self.record(started, "fresh", response)
            except Exception as error:
                self.record(started, "fresh", error=repr(error))
            time.sleep(0.002)

    def keepalive_loop(self):
        conn = None
        while not self.halt.is_set():
            started = now()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(*LB, timeout=10)
                conn.request("GET", "/whoami")
                response = conn.getresponse()
                response.read()
                self.record(started, "keep-alive", response)
                if response.will_close:
                    conn.close()
                    conn = None
            except Exception as error:
                self.record(started, "keep-alive", error=repr(error))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.002)

    def ws_loop(self, ident):
        closed_at = None
        while not self.halt.is_set():
            server = None
            try:
                with self.connect_ws(f"ws://{LB[0]}:{LB[1]}/ws", open_timeout=5, close_timeout=2) as ws:
                    server = ws.response.headers.get("X-Served-By")
                    with self.lock:
                        self.ws_server[ident] = server
                        if closed_at is not None:
                            self.ws_reconnects.append((now(), now() - closed_at, server))
                    self.ws_echo(ws, ident, server)
                return  # halted
            except ConnectionClosed as closed:  # the code the server sent; 1006 when no close frame came
                closed_at = now()
                with self.lock:
                    self.ws_closes.append((closed_at, server, closed.rcvd.code if closed.rcvd else 1006))
                    self.ws_server.pop(ident, None)
            except Exception as error:  # the connection or the handshake failed
                with self.lock:
                    self.ws_problems.append((now(), None, f"connect: {error!r}"))
                time.sleep(0.1)

    def ws_echo(self, ws, ident, server):
        """A message every 0.3 s, each echoed within 3 s, until halted or closed (ConnectionClosed)."""
        count = 0
        while not self.halt.is_set():
            count += 1
            message = f"{ident}-{count}"
            ws.send(message)
            try:
                echo = ws.recv(timeout=3)
            except TimeoutError:
                with self.lock:
                    self.ws_problems.append((now(), server, "no echo within 3 s"))
                continue
            if echo != message:
                with self.lock:
                    self.ws_problems.append((now(), server, f"echo {echo!r} for {message!r}"))
            self.halt.wait(0.3)

    def open_on(self, server):
        with self.lock:
            return sum(1 for s in self.ws_server.values() if s == server)

    def in_window(self, began, ended):
        with self.lock:
            http = [r for r in self.http if began <= r[0] < ended]
            closes = [c for c in self.ws_closes if began <= c[0] < ended]
            reconnects = [r for r in self.ws_reconnects if began <= r[0] < ended]
            problems = [p for p in self.ws_problems if began <= p[0] < ended]
        return http, closes, reconnects, problems


class Step:
    def __init__(self, name, host):
        self.name, self.host = name, host
        self.notes = []
        self.down_after = self.up_after = self.last_try = self.sent_while_drained = None
        self.ws_on_host = 0
        self.in_place = False


def counts(clients, step):
    http, closes, reconnects, problems = clients.in_window(step.began, step.ended)
    failed = [r for r in http if not r[2]]
    codes = {}
    for _, server, code in closes:
        codes[code] = codes.get(code, 0) + 1
    return {
        "ok": sum(1 for r in http if r[2]), "failed": len(failed),
        "errors": sorted({r[4] for r in failed})[:4],
        "fresh": sum(1 for r in http if r[1] == "fresh"), "keepalive": sum(1 for r in http if r[1] == "keep-alive"),
        "on_host": sum(1 for r in http if r[2] and r[3] == step.host.server),
        "codes": codes, "closes": closes, "problems": problems,
        "reconnect_max": max((r[1] for r in reconnects), default=None), "reconnects": len(reconnects),
    }


def step_upgrade(host, deb, watch, clients, step):
    step.ws_on_host = clients.open_on(host.server)
    before = host.main_pid()
    host.install(deb)
    version = host.version()
    check(os.path.basename(deb).split("_")[1] == version, f"{host.name}: version {version} after apt install ./{os.path.basename(deb)}")
    back = watch.wait(host.server, "UP", 30)
    # The package replaces the supervisor in place when it can (issue 22): same MainPID, same workers.
    step.in_place = host.main_pid() == before
    if step.in_place:
        step.notes.append(f"upgraded in place (MainPID {before} kept); UP throughout")
        return
    went = watch.first(host.server, "lb", lambda v: v == "DOWN", step.began)
    unready = watch.first(host.server, "readyz", lambda v: v != "200", step.began)
    check(went is not None and unready is not None, f"{host.name}: HAProxy never took it out during the upgrade")
    step.down_after = went - unready
    step.up_after = back - step.began
    step.notes.append(f"apt install took {back - step.began:.1f}s to UP")


def step_stop_start(host, watch, clients, step):
    step.ws_on_host = clients.open_on(host.server)
    began = now()
    host.sh("systemctl stop hyperglass", timeout=90)
    stopped = now() - began
    watch.wait(host.server, "DOWN", 10)
    went = watch.first(host.server, "lb", lambda v: v == "DOWN", step.began)
    unready = watch.first(host.server, "readyz", lambda v: v != "200", step.began)
    step.down_after = went - unready
    step.notes.append(f"systemctl stop took {stopped:.1f}s (lame duck {LAME_DUCK:g}s, then drain)")
    time.sleep(1)
    began = now()
    host.sh("systemctl start hyperglass", timeout=90)
    back = watch.wait(host.server, "UP", 30)
    step.up_after = back - began
    step.notes.append(f"systemctl start returned after {now() - began:.1f}s")


def step_drain_by_hand(host, haproxy, watch, clients, step):
    """HAProxy's runtime API takes the host out (state drain): no new request reaches it while its
    WebSockets stay open; then `systemctl stop` closes them (1001), start, and `state ready` again."""
    step.ws_on_host = clients.open_on(host.server)
    drained = now()
    haproxy.command(f"set server hyperglass/{host.server} state drain")
    watch.wait(host.server, "DRAIN", 5)
    time.sleep(2)
    step.notes.append(f"{clients.open_on(host.server)} of {step.ws_on_host} WebSockets still open on it 2 s after drain")
    began = now()
    host.sh("systemctl stop hyperglass", timeout=90)
    step.notes.append(f"systemctl stop took {now() - began:.1f}s")
    host.sh("systemctl start hyperglass", timeout=90)
    watch.wait(host.server, "DRAIN", 30)  # healthy again, still drained by hand
    readied = now()
    haproxy.command(f"set server hyperglass/{host.server} state ready")
    watch.wait(host.server, "UP", 10)
    # Requests that began on it while it was drained. A request's time is the client's, taken before it
    # connects, so 100 ms at each end: one just under way at the drain, one sent just before `ready`
    # that HAProxy received after it (seen once under load).
    with clients.lock:
        step.sent_while_drained = sum(1 for r in clients.http if r[2] and r[3] == host.server and drained + 0.1 <= r[0] < readied - 0.1)
    step.notes.append(f"{step.sent_while_drained} requests began on it while drained")


def step_kill(host, debs, deb, watch, clients, step):
    step.ws_on_host = clients.open_on(host.server)
    killed = now()
    host.kill_machine()
    went = watch.wait(host.server, "DOWN", 15)
    step.down_after = went - killed
    time.sleep(1)
    # The last request HAProxy tried on the dead host (seen to 0.1 s, the watch's period).
    last = watch.last(host.server, "failed-tries", killed, now())
    step.last_try = None if last is None else last - killed
    step.notes.append("HAProxy's last try on it " + ("none seen" if last is None else f"{step.last_try:.2f}s after the kill"))
    began = now()
    host.provision(debs, deb)  # a new machine: the volatile root comes back pristine
    back = watch.wait(host.server, "UP", 60)
    step.up_after = back - began
    step.notes.append(f"fresh boot + apt install + UP in {back - began:.1f}s")


def table(rows):
    headers = ["step", "secs", "HTTP ok", "failed", "fresh/keep-alive", "on host", "WS on host", "WS 1001", "WS 1006",
               "WS other", "reconnect max", "readyz→DOWN", "→UP"]
    lines = [headers] + rows
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(headers))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)) for line in lines)


def reuse_or_build(version, out):
    existing = [os.path.join(out, f) for f in os.listdir(out) if version in f and f.endswith(".deb")]
    return existing[0] if existing else package.build(version, out)


def ensure_haproxy():
    if run(["sh", "-c", "command -v haproxy"], check_rc=False).returncode == 0:
        return
    log("installing Debian's haproxy package")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "haproxy"]
    if run(argv, env=env, timeout=300, check_rc=False).returncode != 0:
        run(["apt-get", "update", "-q"], env=env, timeout=300)
        run(argv, env=env, timeout=300)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch-path", default=".build")
    parser.add_argument("--lame-duck", type=float, default=5.0,
                        help="the hosts' lame_duck in seconds (default %(default)s; shorter than HAProxy's detection, expect failures)")
    parser.add_argument("--debs", help="reuse the packages already built in this directory (debugging; they may be stale)")
    options = parser.parse_args()
    globals()["LAME_DUCK"] = options.lame_duck
    package.SCRATCH = options.scratch_path if os.path.isabs(options.scratch_path) else os.path.join(ROOT, options.scratch_path)
    if os.geteuid() != 0:
        log("SKIPPED: booting systemd hosts and installing haproxy need root")
        return 0
    if not os.access(TESTBED, os.X_OK):
        log(f"SKIPPED: no systemd testbed at {os.path.normpath(TESTBED)} (set TESTBED=/path/to/testbed.sh)")
        return 0
    if ConnectionClosed is None:
        log("SKIPPED: Python's websockets (the WebSocket client) is missing; run make test-deps")
        return 0
    package.PACKAGE = run(["make", "--no-print-directory", "-s", "-f", "Makefile", "-f", "-", "print-deb-package"], cwd=ROOT,
                          input="print-deb-package:\n\t@echo $(DEB_PACKAGE)\n").stdout.strip() or package.PACKAGE
    inter, fall, timeout_check = haproxy_timing()
    detect = inter * fall + timeout_check
    if LAME_DUCK <= detect:
        log(f"note: lame_duck {LAME_DUCK:g}s does not outlast HAProxy's detection ({detect:g}s): expect failures")
    began = now()
    workdir = tempfile.mkdtemp(prefix="hg-fleet-")
    hosts = [Host(i) for i in (1, 2, 3)]
    haproxy = watch = clients = None
    failures, rows = [], []
    try:
        ensure_haproxy()
        log("building two packages with make deb" + (f" (or reusing those in {options.debs})" if options.debs else ""))
        old, new = (reuse_or_build(version, options.debs or workdir) for version in ("0.1.0~fleet1-1", "0.1.0~fleet2-1"))
        for host in hosts:
            started = now()
            host.provision([old, new], old)
            log(f"{host.name}: up with {host.version()} on :{host.app_port}, metrics :{host.metrics_port} ({now() - started:.1f}s)")
        haproxy = HAProxy(hosts, workdir)
        watch = Watch(haproxy, hosts)
        watch.start()
        for host in hosts:
            watch.wait(host.server, "UP", 20)
        log(f"haproxy {LB[0]}:{LB[1]} -> {', '.join(f'{h.server} :{h.app_port}' for h in hosts)}: all UP "
            f"(inter {inter:g}s, fall {fall}, timeout check {timeout_check:g}s; lame_duck {LAME_DUCK:g}s)")
        clients = Clients()
        clients.start()
        time.sleep(3)

        plan = [(f"upgrade {h.server}", h, lambda s, h=h: step_upgrade(h, new, watch, clients, s)) for h in hosts]
        plan.append((f"stop+start {hosts[1].server}", hosts[1], lambda s: step_stop_start(hosts[1], watch, clients, s)))
        plan.append((f"drain {hosts[0].server} by hand", hosts[0], lambda s: step_drain_by_hand(hosts[0], haproxy, watch, clients, s)))
        plan.append((f"kill {hosts[2].server}", hosts[2], lambda s: step_kill(hosts[2], [old, new], new, watch, clients, s)))
        steps = []
        for name, host, action in plan:
            step = Step(name, host)
            step.began = now()
            log(f"{name}: {clients.open_on(host.server)} WebSockets open on it")
            try:
                action(step)
            except Failure as error:
                failures.append(f"{name}: {error}")
            time.sleep(1.5)  # what follows the step: reconnects, the host taking traffic again
            step.ended = now()
            steps.append(step)
            c = counts(clients, step)
            log(f"{name}: {c['ok']} ok, {c['failed']} failed {c['errors']}, WebSocket closes {c['codes']}, "
                f"{'; '.join(step.notes)}")

        for step in steps:
            c = counts(clients, step)
            others = sum(n for code, n in c["codes"].items() if code not in (1001, 1006))
            rows.append([step.name, f"{step.ended - step.began:.1f}", c["ok"], c["failed"], f"{c['fresh']}/{c['keepalive']}",
                         c["on_host"], step.ws_on_host, c["codes"].get(1001, 0), c["codes"].get(1006, 0), others,
                         "-" if c["reconnect_max"] is None else f"{c['reconnect_max'] * 1000:.0f} ms",
                         "-" if step.down_after is None else f"{step.down_after:.2f}s",
                         "-" if step.up_after is None else f"{step.up_after:.1f}s"])
            check_step(step, c, detect, failures)
        stats = haproxy.stats()
        log("haproxy retries/redispatches per server: " +
            ", ".join(f"{s} {r['wretr']}/{r['wredis']}" for s, r in sorted(stats.items())))
    except Failure as error:
        failures.append(str(error))
    finally:
        if clients:
            clients.stop()
        if watch:
            watch.halt.set()
            watch.join(timeout=5)
        if haproxy:
            haproxy.stop()
        for host in hosts:
            host.down()
    if rows:
        print(table(rows), flush=True)
    for failure in failures:
        log(f"FAIL {failure}")
    if failures and haproxy:
        log(f"haproxy's log: {haproxy.log_path} (kept)")
    else:
        subprocess.run(["rm", "-rf", workdir])
    log(f"{'FAILED' if failures else 'passed'} in {now() - began:.1f}s")
    return 1 if failures else 0


def check_step(step, c, detect, failures):
    def need(condition, message):
        if not condition:
            failures.append(f"{step.name}: {message}")

    need(c["ok"] > 100 and c["fresh"] > 0 and c["keepalive"] > 0, f"too little load to judge: {c['fresh']} fresh, {c['keepalive']} keep-alive")
    need(not [p for p in c["problems"] if p[1] != step.host.server or not step.name.startswith("kill")],
         f"WebSocket problems: {c['problems'][:4]}")
    closed_elsewhere = [x for x in c["closes"] if x[1] != step.host.server]
    need(not closed_elsewhere, f"WebSockets closed on hosts not in this step: {closed_elsewhere[:4]}")
    if step.name.startswith("kill"):
        # Each client has at most one request in flight: 3 HTTP clients.
        need(c["failed"] <= 3, f"{c['failed']} failed requests, more than the 3 that can be in flight: {c['errors']}")
        need(step.down_after is not None and step.down_after <= detect + 0.3,
             f"HAProxy marked it DOWN {step.down_after}s after the kill, beyond inter × fall + timeout check = {detect:g}s")
        need(step.last_try is None or step.last_try <= detect + 0.3,
             f"HAProxy still sent requests to it {step.last_try or 0:.2f}s after the kill, beyond {detect:g}s")
        need(c["codes"].get(1006, 0) <= step.ws_on_host, f"more 1006 closes than WebSockets open on it: {c['codes']}")
        return
    need(c["failed"] == 0, f"{c['failed']} failed requests: {c['errors']}")
    if step.in_place:
        on_host = [x for x in c["closes"] if x[1] == step.host.server]
        need(not on_host, f"an in-place upgrade closed WebSockets on the host: {on_host[:4]}")
        need(c["on_host"] > 0, "the host served nothing while it was upgraded in place")
        return
    need(c["codes"].get(1006, 0) == 0, f"WebSockets closed without a close frame (1006): {c['closes']}")
    need(step.ws_on_host == 0 or c["codes"].get(1001, 0) >= step.ws_on_host,
         f"{step.ws_on_host} WebSockets were open on the host, {c['codes'].get(1001, 0)} closed with 1001")
    need(c["reconnect_max"] is None or c["reconnect_max"] < 1.0, f"a WebSocket took {c['reconnect_max'] or 0:.2f}s to reconnect")
    if step.name.startswith("drain"):
        need(step.sent_while_drained == 0, f"HAProxy sent {step.sent_while_drained} requests to it while drained")
        return
    need(step.down_after is not None and step.down_after <= detect + 0.3,
         f"HAProxy took it out {step.down_after}s after /readyz turned, beyond inter × fall + timeout check = {detect:g}s")
    need(c["on_host"] > 0, "the host served nothing in the step (not back in the pool?)")


if __name__ == "__main__":
    sys.exit(main())
