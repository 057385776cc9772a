#!/usr/bin/env python3
"""10,000 WebSockets on 4 bundled workers (issue 23, item 3): memory per connection, the 1001 drain, and
the connection cap.

Two runs of `hyperglass start --workers 4` with the bundled worker, each on a fresh supervisor:
  A (no cap)        opens N WebSockets (default 10,000), checks an echo on each, and reports the workers'
                    VmRSS growth per connection; then SIGTERM: how many got close code 1001, and how long
                    until the last close frame arrived.
  B (cap)           the same with `environment = HYPERGLASS_MAX_CONNECTIONS=N/4`: all N open (the workers
                    at their cap leave newcomers to the others), connection N+1 gets a 503 with
                    Retry-After, then an echo on every one of the N shows none was disturbed; SIGTERM, 1001.
The client is a plain asyncio one (the upgrade by hand, one frame at a time): it costs far less than a
WebSocket library at this count. Needs RLIMIT_NOFILE above N + 1000 (raised here; as root past the hard limit).

usage: bench/websockets.py [--bin DIR] [--count N] [--runs A,B]   (default .build/release, 10000, A,B)
Exit 1 when a run misses its goal (<= 1 KiB per connection, every close 1001, a clean refusal of N+1).
Every process it starts is ended by pid; every wait is bounded.
"""
import asyncio, json, os, resource, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def masked(opcode, payload):
    mask = b"\x01\x02\x03\x04"
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    pids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        pids += [int(p) for p in open(f"/proc/{pid}/task/{task}/children").read().split()]
    return pids


def load_average():
    return open("/proc/loadavg").read().split()[0]


class Supervisor:
    def __init__(self, bindir, extra=()):
        self.dir = tempfile.mkdtemp(prefix="hg-ws-")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HYPERGLASS_") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID")}
        self.log = open(os.path.join(self.dir, "supervisor.log"), "w+")
        self.process = subprocess.Popen(
            [os.path.join(bindir, "hyperglass"), "start", "--bind", f"127.0.0.1:{self.port}", "--workers", "4",
             "--control-socket", os.path.join(self.dir, "control.sock"), "--readiness", "notify", *extra],
            env=env, stdout=self.log, stderr=self.log)
        end = time.monotonic() + 30
        while time.monotonic() < end and len(self.workers()) < 4:
            time.sleep(0.05)
        time.sleep(1)  # READY=1 from each

    def workers(self):
        return children(self.process.pid) if self.process.poll() is None else []

    def stop(self):
        left = self.workers()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", self.dir])


async def open_one(port, semaphore):
    async with semaphore:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 20)
        writer.write(UPGRADE)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        return reader, writer, head


async def echo(connection, text, semaphore):
    reader, writer, _ = connection
    async with semaphore:
        writer.write(masked(0x1, text))
        frame = await asyncio.wait_for(reader.readexactly(2 + len(text)), 20)
        return frame[2:] == text


async def close_code(connection, start):
    reader, writer, _ = connection
    try:
        head = await asyncio.wait_for(reader.readexactly(4), 60)
        code = head[2] << 8 | head[3] if head[0] == 0x88 else None
        writer.write(masked(0x8, head[2:4]))  # answer the close handshake
        return code, time.monotonic() - start
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
        return None, time.monotonic() - start


async def run(bindir, count, capped):
    cap = (count + 3) // 4
    sup = Supervisor(bindir, ["--environment", f"HYPERGLASS_MAX_CONNECTIONS={cap}"] if capped else [])
    failures = []
    try:
        label = f"B (max_connections {cap} x 4 workers)" if capped else "A (no cap)"
        workers = sup.workers()
        before = sum(rss_kib(p) for p in workers)
        semaphore = asyncio.Semaphore(200)
        t0 = time.monotonic()
        opened = await asyncio.gather(*(open_one(sup.port, semaphore) for _ in range(count)), return_exceptions=True)
        took = time.monotonic() - t0
        good = [c for c in opened if not isinstance(c, BaseException) and c[2].startswith(b"HTTP/1.1 101 ")]
        if len(good) != count:
            failures.append(f"{label}: {len(good)} of {count} WebSockets opened")
        echoes = await asyncio.gather(*(echo(c, b"hello", semaphore) for c in good), return_exceptions=True)
        echoed = sum(1 for e in echoes if e is True)
        await asyncio.sleep(1)
        after = sum(rss_kib(p) for p in workers)
        per = (after - before) / max(1, len(good))
        per_worker = [len([1 for fd in os.listdir(f"/proc/{p}/fd")]) for p in workers]
        print(f"{label}: {len(good)}/{count} open in {took:.2f} s, {echoed} echoed; workers' VmRSS {before} -> {after} kB: "
              f"{per:.2f} KiB per connection; fds per worker {per_worker} (load average {load_average()})", flush=True)
        if per > 1.0:
            failures.append(f"{label}: {per:.2f} KiB per connection (goal <= 1)")
        if capped:
            extra = await asyncio.wait_for(open_one(sup.port, asyncio.Semaphore(1)), 10)
            status = extra[2].split(b"\r\n")[0].decode()
            retry = b"\r\nRetry-After: " in extra[2]
            try:
                rest = await asyncio.wait_for(extra[0].read(), 10) if status.startswith("HTTP/1.1 503") else b""
            except asyncio.TimeoutError:
                rest = b"(not closed within 10 s)"
            print(f"{label}: connection {count + 1}: {status!r}, Retry-After {'present' if retry else 'missing'}, "
                  f"then closed ({len(rest)} body bytes)", flush=True)
            if not (status.startswith("HTTP/1.1 503") and retry):
                failures.append(f"{label}: connection {count + 1} got {status!r}")
            extra[1].close()
            again = await asyncio.gather(*(echo(c, b"untouched", semaphore) for c in good), return_exceptions=True)
            untouched = sum(1 for e in again if e is True)
            print(f"{label}: after the refusal {untouched}/{len(good)} open WebSockets still echo", flush=True)
            if untouched != len(good):
                failures.append(f"{label}: {len(good) - untouched} open WebSockets disturbed")
        start = time.monotonic()
        sup.process.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*(close_code(c, start) for c in good))
        n1001 = sum(1 for code, _ in codes if code == 1001)
        last = max((t for code, t in codes if code == 1001), default=float("nan"))
        others = {}
        for code, _ in codes:
            if code != 1001:
                others[code] = others.get(code, 0) + 1
        print(f"{label}: SIGTERM: {n1001}/{len(good)} closed with 1001, the last after {last:.2f} s"
              + (f"; others {others}" if others else ""), flush=True)
        if n1001 != len(good):
            failures.append(f"{label}: {len(good) - n1001} WebSockets not closed with 1001")
        for c in good:
            c[1].close()
    finally:
        sup.stop()
    return failures


def main(argv):
    bindir, count, runs = os.path.join(HERE, "..", ".build", "release"), 10000, "A,B"
    i = 0
    while i < len(argv):
        if argv[i] == "--bin":
            bindir, i = argv[i + 1], i + 1
        elif argv[i] == "--count":
            count, i = int(argv[i + 1]), i + 1
        elif argv[i] == "--runs":
            runs, i = argv[i + 1], i + 1
        else:
            raise SystemExit(__doc__)
        i += 1
    # This client holds N sockets, a worker N (no cap); the workers inherit the limit through the supervisor.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        hard = max(hard, count + 1000)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # raising the hard limit needs root
    except (ValueError, OSError):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < count + 1000:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is too low for {count} connections; raise it (ulimit -Hn)")
    print(f"# websockets: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} CPUs, {count} connections, "
          f"{os.path.abspath(bindir)}", flush=True)
    failures = []
    for run_name in runs.split(","):
        failures += asyncio.run(run(bindir, count, capped=run_name == "B"))
    if failures:
        print("FAIL: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
