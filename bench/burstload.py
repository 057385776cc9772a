#!/usr/bin/env python3
"""Bursts of slow requests between quiet periods, against one HTTP port; optionally watches a
hyperglass supervisor's worker count meanwhile.

usage: burstload.py PORT [--bursts N] [--requests R] [--spread S] [--hold H] [--gap G]
                         [--timeout T] [--control SOCKET] [--floor N] [--settle S]

Each burst sends R requests spread evenly over S seconds, each GET /hold?s=H on its own connection
(a client timeout of T seconds counts as a timeout); bursts start G seconds apart. With --control
the supervisor's desired count is polled every 100 ms (status over its control socket) to report
how long the pool took to react to each burst, its peak, and, after the last burst, how long it took
to get back to --floor (waiting up to --settle seconds).
Prints one line: p50/p99 latency, timeouts, errors, and the scaling figures.
"""
import argparse, http.client, json, socket, threading, time

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("--bursts", type=int, default=2)
p.add_argument("--requests", type=int, default=24)
p.add_argument("--spread", type=float, default=2.0)
p.add_argument("--hold", type=float, default=2.0)
p.add_argument("--gap", type=float, default=20.0)
p.add_argument("--timeout", type=float, default=10.0)
p.add_argument("--control")
p.add_argument("--floor", type=int, default=0)
p.add_argument("--settle", type=float, default=0)
p.add_argument("--label", default="")
a = p.parse_args()

lock = threading.Lock()
latencies, timeouts, errors = [], 0, 0
counts = []  # (t, desired)
stop = threading.Event()
t0 = time.monotonic()


def one_request():
    global timeouts, errors
    start = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
        c.request("GET", f"/hold?s={a.hold}")
        r = c.getresponse()
        r.read()
        c.close()
        ok = r.status == 200
    except (socket.timeout, TimeoutError):
        with lock:
            timeouts += 1
        return
    except OSError:
        ok = False
    with lock:
        if ok:
            latencies.append(time.monotonic() - start)
        else:
            errors += 1


def desired():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(a.control)
    s.sendall(b'{"cmd":"workers"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)["desired"]


def watcher():
    while not stop.is_set():
        try:
            counts.append((time.monotonic() - t0, desired()))
        except OSError:
            pass
        stop.wait(0.1)


if a.control:
    threading.Thread(target=watcher, daemon=True).start()
time.sleep(0.3)
threads, burst_starts = [], []
for b in range(a.bursts):
    start = t0 + 0.3 + b * a.gap
    while time.monotonic() < start:
        time.sleep(0.01)
    burst_starts.append(time.monotonic() - t0)
    for i in range(a.requests):
        at = start + a.spread * i / a.requests
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=one_request)
        t.start()
        threads.append(t)
for t in threads:
    t.join(a.timeout + 5)
done_at = time.monotonic() - t0

floor_at = None
if a.control and a.settle > 0:
    end = time.monotonic() + a.settle
    while time.monotonic() < end:
        if counts and counts[-1][1] <= a.floor and counts[-1][0] > done_at:
            floor_at = counts[-1][0]
            break
        time.sleep(0.1)
stop.set()

lat = sorted(latencies)
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
line = (f"{a.label:<28} requests {a.bursts * a.requests:4d}  p50 {pct(0.50):6.2f} s  p99 {pct(0.99):6.2f} s  "
        f"max {lat[-1] if lat else float('nan'):6.2f} s  timeouts {timeouts:3d}  errors {errors:3d}")
if a.control and counts:
    reacts, peaks = [], []
    for i, bs in enumerate(burst_starts):
        be = burst_starts[i + 1] if i + 1 < len(burst_starts) else done_at
        before = [c for t, c in counts if t <= bs]
        base = before[-1] if before else counts[0][1]
        grew = [t for t, c in counts if bs < t <= be and c > base]
        reacts.append(f"{(grew[0] - bs):.1f}s" if grew else "-")
        peaks.append(max([c for t, c in counts if bs < t <= be] or [base]))
    line += f"  react {','.join(reacts)}  peak {','.join(map(str, peaks))}"
    if a.settle > 0:
        line += f"  back to {a.floor} after last request: " + (f"{floor_at - done_at:.1f} s" if floor_at else f"not within {a.settle:.0f} s")
print(line, flush=True)
