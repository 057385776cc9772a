#!/usr/bin/env python3
"""Measures request latency while a roll runs: --rate requests per second, each on a new connection,
each from its own thread so a request stuck in the backlog does not delay the next one.
Runs until stdin closes; prints one JSON object: count, failed, p50_ms, p99_ms, max_ms, and the
maximum over the requests sent before --mark-after seconds (the baseline) and after it."""
import argparse, json, socket, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--rate", type=float, default=50)
p.add_argument("--seconds", type=float, default=120)
args = p.parse_args()

lock = threading.Lock()
results = []  # (sent_at, latency_s or None, error)
stop = threading.Event()
t0 = time.monotonic()


def one():
    sent = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise ConnectionError("EOF before the response head")
                data += chunk
            if not data.startswith(b"HTTP/1.1 200") and not data.startswith(b"HTTP/1.0 200"):
                raise ConnectionError(data.split(b"\r\n")[0].decode(errors="replace"))
        with lock:
            results.append((sent - t0, time.monotonic() - sent, None))
    except Exception as error:
        with lock:
            results.append((sent - t0, None, repr(error)))


def driver():
    interval = 1.0 / args.rate
    next_at = time.monotonic()
    while not stop.is_set() and time.monotonic() - t0 < args.seconds:
        threading.Thread(target=one, daemon=True).start()
        next_at += interval
        stop.wait(max(0, next_at - time.monotonic()))


threading.Thread(target=driver, daemon=True).start()
print("running", flush=True)
marks = []
for line in sys.stdin:
    marks.append(time.monotonic() - t0)  # any line marks "the roll begins now"
stop.set()
time.sleep(1.0)
with lock:
    done = list(results)
latencies = sorted(r[1] for r in done if r[1] is not None)
mark = marks[0] if marks else float("inf")


def ms(x):
    return round(x * 1000, 1)


def worst(rows):
    values = [r[1] for r in rows if r[1] is not None]
    return ms(max(values)) if values else None


print(json.dumps({
    "count": len(done),
    "failed": sum(1 for r in done if r[1] is None),
    "errors": [r[2] for r in done if r[2]][:5],
    "p50_ms": ms(latencies[len(latencies) // 2]) if latencies else None,
    "p99_ms": ms(latencies[int(len(latencies) * 0.99)]) if latencies else None,
    "max_ms": ms(latencies[-1]) if latencies else None,
    "baseline_max_ms": worst([r for r in done if r[0] < mark]),
    "roll_max_ms": worst([r for r in done if r[0] >= mark]),
}), flush=True)
