#!/usr/bin/env python3
"""A tiny worker for the supervisor's integration tests.

It serves HTTP on the inherited fd 3 (GET / answers JSON with its pid, LISTEN_PID, worker id) and
behaves as told: --exit CODE (exit at once), --ignore-term, --notify (send READY=1 after --delay),
--record FILE (append "pid signal" lines for signals received).
"""
import argparse, json, os, signal, socket, sys, time

p = argparse.ArgumentParser()
p.add_argument("--exit", type=int, default=None)
p.add_argument("--ignore-term", action="store_true")
p.add_argument("--notify", action="store_true")
p.add_argument("--delay", type=float, default=0.0)
p.add_argument("--record", default=None)
args = p.parse_args()

def record(line):
    if args.record:
        with open(args.record, "a") as f:
            f.write(line + "\n")

def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), address)

stopping = False
def on_term(signum, frame):
    global stopping
    record(f"{os.getpid()} signal {signum}")
    if not args.ignore_term:
        stopping = True
signal.signal(signal.SIGTERM, on_term)
# Recorded only now, so a test that saw 'started' knows the SIGTERM handler is in place.
record(f"{os.getpid()} started listen_pid={os.environ.get('LISTEN_PID')} fds={os.environ.get('LISTEN_FDS')} "
       f"names={os.environ.get('LISTEN_FDNAMES')} id={os.environ.get('HYPERGLASS_WORKER_ID')} "
       f"pgid={os.getpgid(0)} notify={os.environ.get('NOTIFY_SOCKET')}")
if args.exit is not None:
    sys.exit(args.exit)

listener = socket.socket(fileno=3)
listener.settimeout(0.2)
time.sleep(args.delay)
if args.notify:
    notify("READY=1\nSTATUS=serving")
body_extra = {"pid": os.getpid(), "listen_pid": os.environ.get("LISTEN_PID"), "worker_id": os.environ.get("HYPERGLASS_WORKER_ID")}
while not stopping:
    try:
        conn, _ = listener.accept()
    except (socket.timeout, BlockingIOError, InterruptedError):
        continue
    with conn:
        conn.settimeout(2)
        try:
            conn.recv(4096)
            body = json.dumps(body_extra).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError:
            pass
record(f"{os.getpid()} exiting")
