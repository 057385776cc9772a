#!/usr/bin/env python3
"""The real hyperglass looking glass (1.0.4, PyPI) under the supervisor, driven like an operator would.

`make test-hyperglass` builds the venv (scripts/hyperglass-venv.sh, cached in .build-hyperglass/venv)
and the supervisor, then runs this. It starts redis-server on a loopback port it chose, writes the
application's configuration (Tests/Hyperglass/appconfig) into a private HOME (hyperglass reads
~/hyperglass or /etc/hyperglass only), runs the supervisor with config/hyperglass.conf as shipped
(only the venv path and the port changed), and checks:
  routes        /api/info, /api/devices, /api/queries, /openapi.json answer; time to first answer
  kill          a SIGKILLed worker is replaced; no request on a new connection fails meanwhile
  reload        `hyperglassctl reload --wait` replaces all 4 workers under load, no failed request
  redis-down    a reload while Redis is down fails and the old workers keep serving
  bad-config    likewise a reload with a hyperglass.yaml that hyperglass rejects
  drain         SIGTERM: a query in flight gets its answer, then the supervisor exits 0, workers gone
Every process it starts is ended by pid; every wait is bounded. Loopback only: the query in the drain
check goes to a silent TCP listener of this test standing in for a router.
Exit status 0 when every check passed, 1 otherwise (each failure is listed), 77 to skip.
"""
import argparse, http.client, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKERS = 4
failures = []


def log(text):
    print(f"test-hyperglass: {text}", flush=True)


def check(condition, message):
    """Records a failed expectation and carries on, so one run shows every problem."""
    if condition:
        log(f"ok   {message}")
    else:
        log(f"FAIL {message}")
        failures.append(message)
    return condition


def wait_for(predicate, seconds, interval=0.1):
    """Polls until predicate returns a true value: bounded in time, hence in count."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=5):
    """(status, body) of GET path on a new connection, or (None, error) when it failed."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, body
    except Exception as error:
        return None, repr(error)


class Redis:
    """redis-server on a loopback port, no persistence; stop() and start() again on the same port."""

    def __init__(self, directory, port):
        self.directory, self.port, self.proc = directory, port, None

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.directory],
                                     stdout=open(os.path.join(self.directory, "redis.log"), "a"), stderr=subprocess.STDOUT)
        if not wait_for(self.ping, 10):
            raise RuntimeError("redis-server did not answer PING within 10 s")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class Supervisor:
    def __init__(self, binary, ctl, config, home, directory):
        self.binary, self.ctl_binary, self.config, self.home, self.directory = binary, ctl, config, home, directory
        self.socket = os.path.join(directory, "control.sock")
        self.proc = None

    def start(self):
        env = dict(os.environ, HOME=self.home, PYTHONDONTWRITEBYTECODE="1")
        env.pop("NOTIFY_SOCKET", None)
        self.logfile = open(os.path.join(self.directory, "supervisor.log"), "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "start", "--config", self.config, "--workers", str(WORKERS),
                                      "--control-socket", self.socket], env=env, stdout=self.logfile, stderr=subprocess.STDOUT)

    def ctl(self, *args, timeout=120):
        return subprocess.run([self.ctl_binary, "--socket", self.socket, *args], capture_output=True, text=True, timeout=timeout)

    def status(self):
        result = self.ctl("status", "--json", timeout=10)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def pids(self):
        """Pid per slot of the worker that serves it (not one draining beside it), from the supervisor's view."""
        status = self.status() or {}
        return {w["id"]: w["pid"] for w in status.get("workers", []) if w.get("pid") and w.get("state") != "draining"}

    def all_ready(self):
        status = self.status()
        workers = (status or {}).get("workers", [])
        return len(workers) == WORKERS and all(w.get("state") == "ready" for w in workers) and status

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code


def children_of(pid):
    """Pids whose parent is pid, from one read of the kernel's children list."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class Load:
    """Requests to /api/info on new connections (a reverse proxy's default) and on kept-alive ones.

    A new-connection request that does not get a 200 is a failed request. A kept-alive connection that
    the server closes while idle (uvicorn does so when it drains) and that the client had just reused
    is counted apart: HTTP clients and proxies retry those (nginx's proxy_next_upstream error)."""

    def __init__(self, port, threads=4, keepalive=2):
        self.port, self.stop_event, self.lock = port, threading.Event(), threading.Lock()
        self.counts = {"ok": 0, "failed": 0, "keepalive_ok": 0, "keepalive_closed": 0, "errors": []}
        self.failed_at = []  # when each failed request had been sent (monotonic)
        self.threads = [threading.Thread(target=self.fresh) for _ in range(threads)]
        self.threads += [threading.Thread(target=self.kept_alive) for _ in range(keepalive)]

    def add(self, key, error=None, sent=None):
        with self.lock:
            self.counts[key] += 1
            if key == "failed":
                self.failed_at.append(sent)
            if error and len(self.counts["errors"]) < 10:
                self.counts["errors"].append(f"{key}: {error}")

    def fresh(self):
        while not self.stop_event.is_set():
            sent = time.monotonic()
            status, body = get(self.port, "/api/info", timeout=10)
            self.add("ok" if status == 200 else "failed", None if status == 200 else f"{status} {body[:200]!r}", sent)
            self.stop_event.wait(0.01)

    def kept_alive(self):
        conn = None
        while not self.stop_event.is_set():
            sent = time.monotonic()
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/api/info")
                response = conn.getresponse()
                response.read()
                self.add("keepalive_ok" if response.status == 200 else "failed", None if response.status == 200 else str(response.status), sent)
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                self.add("keepalive_closed", repr(error))
                conn.close()
                conn = None
            except Exception as error:
                self.add("failed", repr(error), sent)
                if conn:
                    conn.close()
                conn = None
            self.stop_event.wait(0.01)
        if conn:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(15)
        return False

    def summary(self):
        c = self.counts
        return f"{c['ok']} ok, {c['failed']} failed on new connections; {c['keepalive_ok']} ok, {c['keepalive_closed']} idle-closed on kept-alive ones"


def write_app_config(home, redis_port, router_port):
    """The shipped example configuration, pointed at this test's Redis and its stand-in router."""
    app = os.path.join(home, "hyperglass")
    os.makedirs(os.path.join(app, "static", "custom"))
    text = open(os.path.join(HERE, "appconfig", "hyperglass.yaml")).read()
    assert "port: 6379" in text and "request_timeout: 20" in text, "appconfig/hyperglass.yaml changed; update the test"
    # A short request_timeout keeps the drain check's query (to a router that never answers) brief.
    text = text.replace("port: 6379", f"port: {redis_port}").replace("request_timeout: 20", "request_timeout: 6")
    open(os.path.join(app, "hyperglass.yaml"), "w").write(text)
    devices = open(os.path.join(HERE, "appconfig", "devices.yaml")).read()
    assert "    address: 192.0.2.1\n" in devices, "appconfig/devices.yaml changed; update the test"
    devices = devices.replace("    address: 192.0.2.1\n", f"    address: 127.0.0.1\n    port: {router_port}\n")
    open(os.path.join(app, "devices.yaml"), "w").write(devices)


def write_supervisor_config(path, venv, port, source):
    """config/hyperglass.conf as shipped, with this venv and port: the test runs what operators copy."""
    text = open(source).read()
    assert "/opt/hyperglass/venv/bin/uvicorn" in text and "bind = 127.0.0.1:8001" in text, "config/hyperglass.conf changed; update the test"
    text = text.replace("/opt/hyperglass/venv", venv).replace("bind = 127.0.0.1:8001", f"bind = 127.0.0.1:{port}")
    # The example apps (hyperglass_ready.py) from this checkout rather than where make install puts them.
    text = text.replace("/etc/hyperglass-supervisor/examples", os.path.join(ROOT, "config", "examples"))
    open(path, "w").write(text)


def silent_router():
    """A TCP listener that accepts and never speaks: a router that does not answer SSH."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    return server, held


# ---- the checks ----------------------------------------------------------------------------------

def check_routes(sup, port):
    started = sup.started
    first = wait_for(lambda: get(port, "/api/info", timeout=2)[0] == 200 and time.monotonic(), 60, 0.05)
    if not check(first, "the first request to /api/info is answered within 60 s of starting the supervisor"):
        return False
    log(f"time to first answer: {first - started:.2f} s (supervisor started → first 200 from /api/info)")
    ready = wait_for(sup.all_ready, 60)
    check(ready, f"{WORKERS}/{WORKERS} workers ready")
    status, body = get(port, "/api/info")
    info = json.loads(body) if status == 200 else {}
    check(info.get("version") == "hyperglass 1.0.4" and info.get("organization") == "Example Networks",
          f"/api/info names hyperglass 1.0.4 and the configured organization ({status} {body[:120]!r})")
    status, body = get(port, "/api/devices")
    check(status == 200 and [d["name"] for d in json.loads(body)] == ["Edge 1"], f"/api/devices lists the one router ({status})")
    status, body = get(port, "/api/queries")
    names = {q["name"] for q in json.loads(body)} if status == 200 else set()
    check({"bgp_route", "ping", "traceroute"} <= names, f"/api/queries lists the query types ({status}, {sorted(names)})")
    status, body = get(port, "/openapi.json")
    paths = json.loads(body).get("paths", {}) if status == 200 else {}
    check("/api/query/" in paths and "/api/info" in paths, f"/openapi.json describes the API ({status}, {len(paths)} paths)")
    return True


def check_killed_worker(sup, port):
    before = sup.pids()
    victim = before.get(1)
    if not check(victim, "worker 1 has a pid before the kill"):
        return
    with Load(port) as load:
        time.sleep(1)
        offset = os.path.getsize(sup.logfile.name)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: (p := sup.pids()).get(1) not in (None, victim) and sup.all_ready() and p, 30)
        # Until the new worker has imported hyperglass and serves: the others carry the load meanwhile.
        serving = wait_for(lambda: startups_since(sup, offset) >= 1 and time.monotonic(), 60, 0.05)
        time.sleep(1)
    check(replaced, f"the killed worker (pid {victim}) is replaced (now {replaced and replaced.get(1)})")
    check(serving, "the replacement reports its application started")
    # Requests the killed worker had accepted die with it (SIGKILL leaves it no say); any request sent
    # after the kill must be served by the others.
    lost = sum(1 for sent in load.failed_at if sent is not None and sent < killed_at)
    after = len(load.failed_at) - lost
    log(f"  replacement serving {(serving - killed_at) if serving else float('nan'):.2f} s after the kill; "
        f"{lost} request(s) in flight on the killed worker lost with it")
    check(after == 0 and load.counts["ok"] > 0, f"no request sent after the kill failed: {load.summary()}")
    log(f"  errors: {load.counts['errors']}" if load.counts["errors"] else "  no errors")


def startups_since(sup, offset):
    """uvicorn's "Application startup complete." lines in the supervisor's log (workers' stderr) after offset:
    the moment a worker has imported hyperglass, passed its Redis check and serves."""
    with open(sup.logfile.name, "rb") as f:
        f.seek(offset)
        return f.read().count(b"Application startup complete.")


def failed_startups_since(sup, offset):
    with open(sup.logfile.name, "rb") as f:
        f.seek(offset)
        return f.read().count(b"Application startup failed")


def check_reload(sup, port):
    before = sup.pids()
    with Load(port) as load:
        time.sleep(1)
        offset = os.path.getsize(sup.logfile.name)
        t0 = time.monotonic()
        result = sup.ctl("reload", "--wait", timeout=180)
        took = time.monotonic() - t0
        serving = wait_for(lambda: startups_since(sup, offset) >= WORKERS and time.monotonic(), 60, 0.05)
        time.sleep(2)
    after = sup.pids()
    check(result.returncode == 0, f"hyperglassctl reload --wait succeeds (exit {result.returncode}: {result.stdout.strip()} {result.stderr.strip()})")
    check(len(after) == WORKERS and not set(after.values()) & set(before.values()), f"every worker replaced ({sorted(before.values())} → {sorted(after.values())})")
    check(load.counts["failed"] == 0 and load.counts["ok"] > 0, f"no failed request during the roll: {load.summary()}")
    check(serving, f"the {WORKERS} new workers report their application started")
    log(f"full roll of {WORKERS} workers: reload --wait returned after {took:.2f} s; the last new worker was serving "
        f"{(serving - t0) if serving else float('nan'):.2f} s after the reload began; {load.summary()}")
    if load.counts["errors"]:
        log(f"  errors: {load.counts['errors']}")


def check_reload_redis_down(sup, port, redis):
    """The new workers cannot start without Redis (hyperglass checks it at startup): the roll must fail and
    leave the old workers serving, untouched."""
    wait_for(sup.all_ready, 30)
    before = sup.pids()
    redis.stop()
    with Load(port) as load:
        time.sleep(0.5)
        offset = os.path.getsize(sup.logfile.name)
        result = sup.ctl("reload", "--wait", timeout=180)
        # Keep Redis down until a new worker has tried it and failed (uvicorn: "Application startup failed").
        tried = wait_for(lambda: failed_startups_since(sup, offset) >= 1, 60, 0.1)
        time.sleep(3)
        during = sup.pids()
        status = sup.status() or {}
    check(tried, "a new worker started while Redis was down, and failed its startup")
    check(result.returncode != 0, f"a reload while Redis is down reports failure (exit {result.returncode}: {(result.stdout + result.stderr).strip()[:300]})")
    check(during == before, f"the old workers keep serving: slots still run the same pids ({sorted(before.values())} → {sorted(during.values())})")
    check(load.counts["failed"] == 0, f"no failed request while Redis is down and a reload ran: {load.summary()}")
    log(f"  status after: {status.get('supervisor', {}).get('status')!r}")
    redis.start()
    recovered = wait_for(sup.all_ready, 90, 0.5)
    check(recovered, f"once Redis is back the pool is {WORKERS}/{WORKERS} ready again, without a restart")
    return recovered


def check_reload_bad_config(sup, port, home):
    """A hyperglass.yaml that hyperglass rejects: the first new worker fails, the roll stops, the old serve."""
    wait_for(sup.all_ready, 60)
    before = sup.pids()
    path = os.path.join(home, "hyperglass", "hyperglass.yaml")
    good = open(path).read()
    try:
        with open(path, "w") as f:
            f.write(good + "primary_asn: [not, a, number]\n")
        with Load(port) as load:
            time.sleep(0.5)
            result = sup.ctl("reload", "--wait", timeout=180)
            time.sleep(1)
            during = sup.pids()
    finally:
        with open(path, "w") as f:
            f.write(good)
    check(result.returncode != 0, f"a reload with a hyperglass.yaml hyperglass rejects fails (exit {result.returncode}: {(result.stdout + result.stderr).strip()[:200]})")
    check(during == before, f"the old workers keep serving ({sorted(before.values())} → {sorted(during.values())})")
    check(load.counts["failed"] == 0, f"no failed request: {load.summary()}")


def check_drain(sup, port, router_port):
    """A query in flight (hyperglass waiting on a router that never answers, up to request_timeout = 6 s)
    when SIGTERM arrives gets its HTTP answer; then the supervisor exits 0 and no worker is left."""
    workers = children_of(sup.proc.pid)
    answer = {}
    def query():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            body = json.dumps({"query_location": "edge_1", "query_type": "bgp_route", "query_vrf": "global",
                               "query_target": "1.1.1.0/24"})
            conn.request("POST", "/api/query/", body=body, headers={"Content-Type": "application/json", "Connection": "close"})
            response = conn.getresponse()
            answer.update(status=response.status, body=response.read()[:300], at=time.monotonic())
        except Exception as error:
            answer.update(error=repr(error), at=time.monotonic())
    thread = threading.Thread(target=query)
    thread.start()
    time.sleep(2)
    in_flight = "at" not in answer
    check(in_flight, "the query is still in flight 2 s after it was sent (the stand-in router never answers)")
    t0 = time.monotonic()
    sup.proc.send_signal(signal.SIGTERM)
    try:
        code = sup.proc.wait(60)
    except subprocess.TimeoutExpired:
        code = None
    exited = time.monotonic()
    thread.join(30)
    check("status" in answer, f"the query in flight at SIGTERM got an HTTP answer ({answer})")
    if "at" in answer:
        log(f"  query answered {answer['at'] - t0:.2f} s after SIGTERM, supervisor exited {exited - t0:.2f} s after it")
        check(answer["at"] <= exited, "the supervisor exited only after the query was answered")
    check(code == 0, f"the supervisor exits 0 after the drain (exit {code})")
    left = [pid for pid in workers if alive(pid)]
    check(not left, f"no worker is left running ({left})")
    sup.proc = None


def compare_gunicorn(venv, sup_binary, home, workdir):
    """RSS of the supervisor beside Gunicorn's arbiter, both running 4 uvicorn workers of hyperglass."""
    port = free_port()
    env = dict(os.environ, HOME=home)
    figures = {}
    gunicorn = subprocess.Popen([os.path.join(venv, "bin", "gunicorn"), "-k", "uvicorn.workers.UvicornWorker", "-w", str(WORKERS),
                                 "-b", f"127.0.0.1:{port}", "hyperglass.api:app"], env=env,
                                stdout=open(os.path.join(workdir, "gunicorn.log"), "a"), stderr=subprocess.STDOUT)
    try:
        if wait_for(lambda: get(port, "/api/info", 2)[0] == 200 and len(children_of(gunicorn.pid)) == WORKERS, 60, 0.2):
            time.sleep(2)
            figures["gunicorn arbiter"] = rss_kib(gunicorn.pid)
            figures["gunicorn workers (each, mean)"] = sum(map(rss_kib, children_of(gunicorn.pid))) // WORKERS
    finally:
        gunicorn.terminate()
        try:
            gunicorn.wait(30)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            gunicorn.wait(5)
    return figures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--venv", default=os.path.join(ROOT, ".build-hyperglass", "venv"))
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug"), help="directory with hyperglass-supervisor or hyperglass, and hyperglassctl")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) even when everything passed")
    parser.add_argument("--config", default=os.path.join(ROOT, "config", "hyperglass.conf"),
                        help="the supervisor configuration to test (default: config/hyperglass.conf)")
    args = parser.parse_args()
    venv = os.path.abspath(args.venv)
    if not os.path.exists(os.path.join(venv, "bin", "uvicorn")):
        log(f"{venv} has no hyperglass venv: run scripts/hyperglass-venv.sh {venv} (make test-hyperglass does)")
        return 1
    binary = next((p for p in (os.path.join(args.bin, n) for n in ("hyperglass-supervisor", "hyperglass")) if os.access(p, os.X_OK)), None)
    ctl = os.path.join(args.bin, "hyperglassctl")
    if not binary or not os.access(ctl, os.X_OK):
        log(f"no supervisor binaries in {args.bin}; run swift build")
        return 1
    if not shutil.which("redis-server"):
        log("skipped: redis-server is not installed (apt-get install redis-server)")
        return 77
    if os.path.exists("/etc/hyperglass"):
        # hyperglass refuses to start when both ~/hyperglass (this test's) and /etc/hyperglass exist.
        log("skipped: /etc/hyperglass exists on this machine, and hyperglass refuses to start when both it and "
            "~/hyperglass exist; this test needs its own ~/hyperglass. Move /etc/hyperglass aside to run it.")
        return 77

    workdir = tempfile.mkdtemp(prefix="hyperglass-test-")
    home = os.path.join(workdir, "home")
    redis = Redis(workdir, free_port())
    router, held = silent_router()
    port = free_port()
    write_app_config(home, redis.port, router.getsockname()[1])
    config = os.path.join(workdir, "supervisor.conf")
    write_supervisor_config(config, venv, port, args.config)
    sup = Supervisor(binary, ctl, config, home, workdir)
    log(f"work directory {workdir}; redis on 127.0.0.1:{redis.port}, hyperglass on 127.0.0.1:{port}, supervisor {binary}")
    try:
        redis.start()
        sup.start()
        if check_routes(sup, port):
            log(f"supervisor RSS {rss_kib(sup.proc.pid)} KiB; workers {sorted(rss_kib(p) for p in children_of(sup.proc.pid))} KiB")
            check_killed_worker(sup, port)
            wait_for(sup.all_ready, 30)
            check_reload(sup, port)
            recovered = check_reload_redis_down(sup, port, redis)
            if recovered:
                check_reload_bad_config(sup, port, home)
            if not recovered:
                log("restarting the supervisor for the drain check")
                sup.stop()
                sup.start()
                wait_for(sup.all_ready, 60)
                wait_for(lambda: get(port, "/api/info", 2)[0] == 200, 30)
            check_drain(sup, port, router.getsockname()[1])
            if os.environ.get("HYPERGLASS_COMPARE_GUNICORN"):
                for name, kib in compare_gunicorn(venv, binary, home, workdir).items():
                    log(f"RSS {name}: {kib} KiB")
    finally:
        sup.stop()
        redis.stop()
        router.close()
        for s in held:
            s.close()
    if failures:
        log(f"{len(failures)} check(s) failed; logs in {workdir}")
        for f in failures:
            log(f"  - {f}")
        return 1
    log("all checks passed")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
