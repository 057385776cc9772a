"""backlog_wait (connections waiting unaccepted on a listener) attacked as an unlucky operator would: a
pool that takes every connection, only slowly, must not be judged one that takes none."""
import json, os, signal, socket, subprocess, tempfile, threading, time

import support
from support import Supervisor, fail, wait_for

SLOWWORKER = os.path.join(support.HERE, "..", "Fixtures", "slowworker.py")
NON_SERVING = os.path.join(support.HERE, "..", "Fixtures", "non_serving.py")


class ClosedLoop:
    """`clients` clients, each sending one request per connection and waiting for its answer, back to back."""

    def __init__(self, connect, clients):
        self.served, self.errors, self.stop = 0, [], threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(connect,), daemon=True) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def _run(self, connect):
        while not self.stop.is_set():
            try:
                with connect() as c:
                    c.settimeout(30)
                    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    ok = c.recv(100).startswith(b"HTTP/1.1 200")
                with self.lock:
                    if ok:
                        self.served += 1
                    else:
                        self.errors.append("no 200")
            except OSError as error:
                with self.lock:
                    self.errors.append(str(error))

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(35)
        return {"served": self.served, "errors": len(self.errors), "first_errors": self.errors[:3]}


def _reload(s, timeout=60):
    ctl = os.path.join(support.PRODUCTS, "hyperglassctl")
    started = time.monotonic()
    result = subprocess.run([ctl, "--socket", s.control, "reload", "--wait"], capture_output=True, text=True, timeout=timeout)
    return result.returncode, (result.stdout + result.stderr).strip().splitlines()[-1:], round(time.monotonic() - started, 2)


def busy_pool_reload():
    """Two sync workers (one connection at a time, 0.8 s each, well under backlog_wait) and eight clients:
    connections wait ~2.4 s in the queue because the pool is saturated, yet the workers take one every
    0.4 s. A reload to the same release completes (it was rolled back: "the new workers do not take
    connections"); a reload to a release that polls and never accepts, under the same load, still fails."""
    directory = tempfile.mkdtemp(prefix="hg-backlog-")
    config = os.path.join(directory, "supervisor.conf")
    def release(command):
        with open(config, "w") as f:
            f.write(f"[worker]\ncommand = {command}\nreadiness = exec\nmin_ready = 1s\n")
    release(f"{SLOWWORKER} --hold 0.8")
    s = Supervisor(workers=2, extra=("--config", config), worker=None)
    load = None
    try:
        if not wait_for(lambda: (s.request({"cmd": "status"}).get("supervisor") or {}).get("state") == "running", 20):
            fail("the pool never ran", log=s.log_text())
        address = s.request({"cmd": "status"})["supervisor"]["listeners"][0]["address"]
        port = int(address.rsplit(":", 1)[1])
        load = ClosedLoop(lambda: socket.create_connection(("127.0.0.1", port), timeout=5), 8)
        # Saturated: the queue holds connections longer than backlog_wait (what /readyz reports, by design).
        def saturated():
            listener = s.request({"cmd": "status"})["supervisor"]["listeners"][0]
            return (listener.get("oldest_wait_seconds") or 0) >= 2
        if not wait_for(saturated, 15):
            fail("the load never kept a connection waiting 2 s", status=s.request({"cmd": "status"})["supervisor"])
        served_before = load.served
        status, said, took = _reload(s)
        figures = {"same_release_reload": {"exit": status, "said": said, "seconds": took, "served_during": load.served - served_before}}
        if status != 0:
            fail("a reload of a saturated but serving pool was rolled back as if its workers took no connections", **figures)
        release(f"{NON_SERVING} poll-no-accept")
        status, said, took = _reload(s)
        figures["poll_no_accept_reload"] = {"exit": status, "said": said, "seconds": took}
        if status != 1 or "do not take connections" not in " ".join(said):
            fail("a reload to workers that never accept was not refused under saturating load", **figures)
        figures["load"] = load.finish()
        load = None
        print(json.dumps(figures))
    finally:
        if load:
            load.finish()
        s.stop()


def busy_unix_listener():
    """A unix listener (whose kernel gives no age) served by one sync worker at 0.5 s a request, three
    clients back to back: each connection waits about 1 s, yet the queue is never empty. Looks 3 s apart
    must not call that a stall (it said "the oldest for 3s", then 6s, growing for as long as the load
    lasted); stopping the worker is still one, once two looks span backlog_wait."""
    directory = tempfile.mkdtemp(prefix="hg-backlog-")
    path = os.path.join(directory, "app.sock")
    s = Supervisor(workers=1, worker=SLOWWORKER, worker_args=("--hold", "0.5"),
                   extra=("--bind", "unix:" + path, "--readiness", "exec", "--min-ready", "0"))
    load = None
    def unix_client():
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(5)
        c.connect(path)
        return c
    def look():
        supervisor = s.request({"cmd": "status"})["supervisor"]
        queue = [l for l in supervisor["listeners"] if l["address"].startswith("unix:")][0]
        return {"stall": supervisor["backlog_stall"], "waiting": queue["waiting"], "oldest": queue["oldest_wait_seconds"]}
    try:
        if not wait_for(lambda: s.request({"cmd": "status"})["supervisor"]["ready"] == 1, 20):
            fail("the pool never got ready", log=s.log_text())
        load = ClosedLoop(unix_client, 3)
        time.sleep(1)
        looks = []
        for _ in range(4):
            looks.append(look())
            time.sleep(3)
        figures = {"looks": looks, "load": load.finish()}
        load = None
        if any(l["stall"] for l in looks):
            fail("a unix listener whose worker takes a connection every 0.5 s was called stalled", **figures)
        if sum(1 for l in looks if l["waiting"] > 0) < 2:
            fail("the queue was not seen non-empty: the scenario tested nothing", **figures)
        # A stopped worker takes nothing: connections that wait across two looks 2.5 s apart are a stall.
        worker = s.request({"cmd": "status"})["workers"][0]["pid"]
        os.kill(worker, signal.SIGSTOP)
        try:
            waiting = [unix_client() for _ in range(3)]
            time.sleep(0.3)
            first = look()
            time.sleep(2.5)
            second = look()
        finally:
            os.kill(worker, signal.SIGCONT)
        figures["stopped"] = [first, second]
        for c in waiting:
            c.close()
        if not second["stall"]:
            fail("a stopped worker's unix listener was not called stalled after looks 2.5 s apart", **figures)
        print(json.dumps(figures))
    finally:
        if load:
            load.finish()
        s.stop()


def foreign_reuseport_listener():
    """A listener handed over by socket activation with SO_REUSEPORT (a .socket unit's ReusePort=yes), and
    another program of the same user listening on the same address and port that never accepts: the
    kernel spreads connections over both queues, and sock_diag cannot tell which queue holds which. Our
    worker, paused 0.3 s, must not be called stalled for the other program's connections (it was: "20
    connections ... the oldest for 3.8s")."""
    port = support.free_port()
    def listener():
        l = socket.socket()
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        l.bind(("127.0.0.1", port))
        l.listen(128)
        return l
    ours = listener()
    directory = tempfile.mkdtemp(prefix="hg-backlog-")
    control = os.path.join(directory, "control.sock")
    log = open(os.path.join(directory, "supervisor.log"), "w+")
    def activate():
        os.dup2(ours.fileno(), 3)
    env = {"PATH": os.environ["PATH"], "LISTEN_FDS": "1"}
    # LISTEN_PID is the supervisor's own pid: the shell sets it to its own, then execs the supervisor.
    process = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", os.path.join(support.PRODUCTS, "hyperglass"), "start",
                                "--control-socket", control, "--workers", "1", "--", os.path.join(support.PRODUCTS, "hyperglass-worker")],
                               env=env, stdout=log, stderr=log, preexec_fn=activate, pass_fds=(ours.fileno(),))
    ours.close()
    foreign = listener()  # the other program: never accepts
    clients = []
    worker = None
    status = lambda: support.control_request(control, {"cmd": "status"}, 3)
    try:
        if not wait_for(lambda: (status().get("supervisor") or {}).get("ready") == 1, 15):
            log.flush()
            fail("the socket-activated supervisor never got ready", log=open(log.name).read()[-2000:])
        worker = status()["workers"][0]["pid"]
        def connect(count):
            for _ in range(count):
                c = socket.socket()
                c.connect(("127.0.0.1", port))
                c.sendall(b"GET / HTTP/1.1\r\n\r\n")
                clients.append(c)
        connect(40)  # some of them wait in the other program's queue from now on
        time.sleep(3)
        before = status()["supervisor"]
        os.kill(worker, signal.SIGSTOP)
        try:
            connect(40)
            time.sleep(0.3)
            paused = status()["supervisor"]
        finally:
            os.kill(worker, signal.SIGCONT)
        figures = {"before": before["listeners"], "paused": paused["listeners"], "stall": paused["backlog_stall"]}
        if paused["listeners"][0]["waiting"] == 0:
            fail("our queue was not seen non-empty while the worker was paused: the scenario tested nothing", **figures)
        if paused["backlog_stall"]:
            fail("connections waiting in another program's queue on the same port were counted as ours", **figures)
        print(json.dumps(figures))
    finally:
        for c in clients:
            c.close()
        foreign.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                for child in support.child_pids(process.pid):
                    os.kill(child, signal.SIGKILL)
                process.kill()
                process.wait(5)
        log.close()


def metrics_flood_during_stall():
    """A control-group member (read-only) asks `metrics` back to back on three connections while 2,000
    connections wait on a stalled listener (3,000 more open and accepted). Each answer read the queues
    afresh, a sock_diag dump of 10-17 ms: the loop did little else, and root's ping took several times as
    long as under the same flood with no stall. Looks are at most one per 100 ms, as for status and /readyz."""
    s = Supervisor(workers=1, worker=os.path.join(support.PRODUCTS, "hyperglass-worker"))
    clients = []
    worker = None
    try:
        if not wait_for(lambda: s.request({"cmd": "status"})["supervisor"]["ready"] == 1, 15):
            fail("the pool never got ready", log=s.log_text())
        port = int(s.request({"cmd": "status"})["supervisor"]["listeners"][0]["address"].rsplit(":", 1)[1])
        worker = s.request({"cmd": "status"})["workers"][0]["pid"]

        def under_flood():
            """Root's ping p50 (ms) and the metrics answered per second while three members flood."""
            read, write = os.pipe()
            def flood():
                os.close(read)
                with socket.socket(socket.AF_UNIX) as c:
                    c.connect(s.control)
                    f = c.makefile("rwb")
                    while f.write(b'{"v":1,"cmd":"metrics"}\n') and f.flush() is None and f.readline():
                        os.write(write, b".")
            flooders = [support.hostile_child(support.READER, flood) for _ in range(3)]
            os.close(write)
            os.set_blocking(read, False)
            def drain():
                count = 0
                while True:
                    try:
                        chunk = os.read(read, 1 << 16)
                    except BlockingIOError:
                        return count
                    if not chunk:
                        return count
                    count += len(chunk)
            time.sleep(0.5)
            drain()
            times = []
            started = time.monotonic()
            for _ in range(60):
                t = time.monotonic()
                if s.request({"cmd": "ping"}, timeout=5).get("ok") is not True:
                    fail("ping went unanswered during a metrics flood", log=s.log_text())
                times.append(time.monotonic() - t)
            answered = drain() / (time.monotonic() - started)
            for pid in flooders:
                support.end(pid)
            os.close(read)
            times.sort()
            return {"ping_p50_ms": round(times[len(times) // 2] * 1000, 2), "metrics_per_second": round(answered)}

        def connect(count):
            for _ in range(count):
                c = socket.socket()
                c.setblocking(False)
                try:
                    c.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                clients.append(c)
        connect(3000)  # accepted and kept open: the dump walks them too
        calm = under_flood()
        os.kill(worker, signal.SIGSTOP)
        connect(2000)
        if not wait_for(lambda: s.request({"cmd": "status"})["supervisor"]["backlog_stall"] is not None, 10):
            fail("no stall seen with the worker stopped", status=s.request({"cmd": "status"})["supervisor"])
        stalled = under_flood()
        figures = {"flood_no_stall": calm, "flood_stall": stalled}
        if stalled["metrics_per_second"] * 3 < calm["metrics_per_second"]:
            fail("a metrics flood during a stall made every answer read the queues afresh", **figures)
        print(json.dumps(figures))
    finally:
        if worker:
            try:
                os.kill(worker, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for c in clients:
            c.close()
        s.stop()
