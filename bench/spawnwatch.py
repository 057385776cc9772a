#!/usr/bin/env python3
"""Scale a running supervisor FROM -> TO workers while pinging its control socket, and report how long
the scale-up took (until `workers TO --wait` answered: with readiness exec, every new worker has
exec'd) and the slowest `ping` answered meanwhile.

usage: spawnwatch.py SOCKET FROM TO ROUNDS [SUPERVISOR_PID]
With the supervisor's pid, each round also reports its time on a CPU and its time runnable but
waiting for one (/proc/PID/schedstat): a ping delayed while the supervisor waited for a CPU is the
machine's load, not the loop blocking.
The pinger sends {"cmd":"ping"} back to back on one connection (one request in flight at a time);
between rounds the pool goes back to FROM and the pinger is idle.
"""
import json, os, socket, sys, threading, time

sock_path, lo, hi, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
spid = sys.argv[5] if len(sys.argv) > 5 else None

def schedstat():
    if not spid:
        return (0, 0)
    total = [0, 0]
    for task in os.listdir(f"/proc/{spid}/task"):
        with open(f"/proc/{spid}/task/{task}/schedstat") as f:
            on_cpu, waiting = f.read().split()[:2]
        total[0] += int(on_cpu)
        total[1] += int(waiting)
    return tuple(total)

def request(conn, obj):
    conn.sendall((json.dumps(obj) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise RuntimeError("control socket closed")
        buf += chunk
    return json.loads(buf)

def connect():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(30)
    c.connect(sock_path)
    return c

def scale(n):
    c = connect()
    try:
        t0 = time.monotonic()
        reply = request(c, {"cmd": "workers", "set": n, "wait": True})
        if not reply.get("ok"):
            raise RuntimeError(reply)
        return time.monotonic() - t0
    finally:
        c.close()

def ready(n):
    c = connect()
    try:
        return request(c, {"cmd": "status"}).get("supervisor", {}).get("ready") == n
    finally:
        c.close()

def wait_ready(n, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready(n):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pool never got back to {n} ready workers")

results = []
for r in range(rounds):
    wait_ready(lo)
    time.sleep(0.5)
    stop = threading.Event()
    pings = []
    def pinger():
        c = connect()
        while not stop.is_set():
            t0 = time.monotonic()
            request(c, {"cmd": "ping"})
            pings.append(time.monotonic() - t0)
        c.close()
    t = threading.Thread(target=pinger)
    t.start()
    time.sleep(0.05)
    s0 = schedstat()
    took = scale(hi)
    s1 = schedstat()
    stop.set()
    t.join(30)
    pings.sort()
    results.append((took, pings[-1], pings[len(pings) // 2], len(pings)))
    print(f"round {r + 1}: {lo} -> {hi} in {took * 1000:7.1f} ms; pings during it: {len(pings)}, "
          f"median {pings[len(pings) // 2] * 1000:.2f} ms, slowest {pings[-1] * 1000:.1f} ms"
          + (f"; supervisor on a CPU {(s1[0] - s0[0]) / 1e6:.1f} ms, runnable but waiting for one {(s1[1] - s0[1]) / 1e6:.1f} ms" if spid else ""),
          flush=True)
    scale(lo)

took = sorted(x[0] for x in results)
worst = sorted(x[1] for x in results)
print(f"summary: {lo} -> {hi} median {took[len(took) // 2] * 1000:.1f} ms (min {took[0] * 1000:.1f}, max {took[-1] * 1000:.1f}); "
      f"slowest ping per round: median {worst[len(worst) // 2] * 1000:.1f} ms, max {worst[-1] * 1000:.1f} ms")
