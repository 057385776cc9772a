#!/usr/bin/env python3
"""HTTP load for the chaos test, in its own process (so the driver's timing is not held up by it).

Runs until stdin closes (or --seconds pass) against 127.0.0.1:PORT, then prints one JSON object.
Two kinds of traffic, as Fixtures/load_client.py: new connections (`Connection: close`, --rate per
second) and --keepalive connections sending requests back to back. Unlike load_client.py, every
failure is classified, because under SIGKILL they do not all mean the same thing:

  refused   connect() failed (ECONNREFUSED, or no SYN-ACK in time): the listening socket was not
            there. The supervisor holds it for the whole run, so this must never happen.
  lost      the connection was accepted, then ended (EOF or reset) before a complete response: the
            worker holding it died. Expected only while some worker was being killed.
  timeout   no complete response within --timeout: something hung.
  status    a complete response that was not 200.

Each failure is kept with its start and end on CLOCK_MONOTONIC (shared by all processes), so the
driver can check that every lost request overlapped the death of some worker.
"""
import argparse, errno, json, socket, sys, threading, time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--rate", type=float, default=100, help="new connections per second, in total")
parser.add_argument("--senders", type=int, default=2, help="threads opening new connections")
parser.add_argument("--keepalive", type=int, default=4, help="kept-alive connections")
parser.add_argument("--pause", type=float, default=0.005, help="seconds between requests on a kept-alive connection")
parser.add_argument("--timeout", type=float, default=15.0)
parser.add_argument("--seconds", type=float, default=3600)
args = parser.parse_args()

stop = threading.Event()
lock = threading.Lock()
counts = {"ok": 0, "refused": 0, "lost": 0, "timeout": 0, "status": 0, "keepalive_reopened": 0}
by_traffic = {"new": dict.fromkeys(("ok", "refused", "lost", "timeout", "status"), 0),
              "keepalive": dict.fromkeys(("ok", "refused", "lost", "timeout", "status"), 0)}
failures = []  # {kind, traffic, start, end, error}
latencies = []


class Refused(Exception):
    pass


def record(traffic, kind, start, error=None):
    end = time.monotonic()
    with lock:
        counts[kind] += 1
        by_traffic[traffic][kind] += 1
        if kind == "ok":
            latencies.append(end - start)
        else:
            failures.append({"kind": kind, "traffic": traffic, "start": start, "end": end, "error": error})


def connect():
    try:
        return socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
    except OSError as error:
        raise Refused(repr(error))


def read_response(sock):
    """(status, wants_close) of one response; raises ConnectionError on EOF before it is complete."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF before a complete response head" + ("" if data else " (nothing received)"))
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip().lower() for k, _, v in (l.partition(":") for l in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("EOF inside the body")
        body += chunk
    return int(lines[0].split()[1]), headers.get("connection") == "close"


def classify(error):
    if isinstance(error, Refused):
        return "refused"
    if isinstance(error, socket.timeout):
        return "timeout"
    if isinstance(error, (ConnectionError, OSError)):
        return "lost"
    return "status"  # a malformed response


def new_connections(rate):
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        start = time.monotonic()
        try:
            with connect() as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n\r\n")
                status, _ = read_response(sock)
                record("new", "ok" if status == 200 else "status", start, None if status == 200 else f"HTTP {status}")
        except Exception as error:
            record("new", classify(error), start, repr(error))
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()


def kept_alive():
    sock = None
    while not stop.is_set():
        start = time.monotonic()
        try:
            if sock is None:
                sock = connect()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: chaos\r\n\r\n")
            status, close = read_response(sock)
            record("keepalive", "ok" if status == 200 else "status", start, None if status == 200 else f"HTTP {status}")
            if close:
                sock.close()
                sock = None
                with lock:
                    counts["keepalive_reopened"] += 1
            stop.wait(args.pause)
        except Exception as error:
            record("keepalive", classify(error), start, repr(error))
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()


threads = [threading.Thread(target=new_connections, args=(args.rate / args.senders,)) for _ in range(args.senders)]
threads += [threading.Thread(target=kept_alive) for _ in range(args.keepalive)]
for thread in threads:
    thread.start()
print("running", flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
stop.wait(args.seconds)
stop.set()
for thread in threads:
    thread.join(args.timeout + 2)
latencies.sort()
quantile = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 4) if latencies else None
print(json.dumps({**counts, "by_traffic": by_traffic, "failures": failures,
                  "latency_p50": quantile(0.5), "latency_p99": quantile(0.99), "latency_max": quantile(1.0)}), flush=True)
