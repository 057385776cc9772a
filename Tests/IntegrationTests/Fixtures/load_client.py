#!/usr/bin/env python3
"""Steady HTTP load for rolling-restart tests, until stdin closes (or --seconds pass).

Two kinds of traffic run side by side against 127.0.0.1:PORT:
  * new connections: --rate requests per second, each on a fresh connection (Connection: close);
  * kept-alive connections: --keepalive connections, each sending requests back to back.
A kept-alive connection that the server ends politely (a response with "Connection: close")
is simply reopened. One that is closed or reset with a request outstanding counts as a
keep-alive reset. Prints one JSON object with the counts at the end.
"""
import argparse, json, socket, sys, threading, time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--rate", type=float, default=300)
parser.add_argument("--keepalive", type=int, default=4)
parser.add_argument("--seconds", type=float, default=60)
args = parser.parse_args()

stop = threading.Event()
lock = threading.Lock()
counts = {"new_ok": 0, "new_failed": 0, "keepalive_ok": 0, "keepalive_resets": 0, "keepalive_reopened": 0, "errors": []}

def add(key, error=None):
    with lock:
        counts[key] += 1
        # Up to 10 errors of each kind, so a rare new-connection failure is not hidden behind resets.
        if error and sum(e.startswith(key + ":") for e in counts["errors"]) < 10:
            counts["errors"].append(f"{key}: {error}")

def read_response(sock, reader):
    """Reads one response; returns (status, wants_close). Raises on EOF or reset before it is complete."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF before a complete response head" + (" (nothing received)" if not head else ""))
        head += chunk
    head, _, body = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip().lower() for k, _, v in (l.partition(":") for l in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF inside the body")
        body += chunk
    return status, headers.get("connection") == "close"

def new_connections(rate):
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", args.port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                status, _ = read_response(sock, None)
                add("new_ok" if status == 200 else "new_failed", None if status == 200 else f"status {status}")
        except Exception as error:
            add("new_failed", repr(error))
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()

def kept_alive():
    sock = None
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", args.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            status, close = read_response(sock, None)
            add("keepalive_ok" if status == 200 else "keepalive_resets", None if status == 200 else f"status {status}")
            if close:
                sock.close()
                sock = None
                add("keepalive_reopened")
            stop.wait(0.002)
        except Exception as error:
            add("keepalive_resets", repr(error))
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()

threads = [threading.Thread(target=new_connections, args=(args.rate / 4,)) for _ in range(4)]
threads += [threading.Thread(target=kept_alive) for _ in range(args.keepalive)]
for thread in threads:
    thread.start()
print("running", flush=True)
watcher = threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True)
watcher.start()
stop.wait(args.seconds)
stop.set()
for thread in threads:
    thread.join(10)
print(json.dumps(counts), flush=True)
