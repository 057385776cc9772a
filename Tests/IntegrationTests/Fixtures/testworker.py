#!/usr/bin/env python3
"""A tiny worker for the supervisor's integration tests.

It serves HTTP on every inherited fd (GET / answers JSON with its pid, LISTEN_PID, worker id) and
behaves as told: --exit CODE (exit at once), --ignore-term, --notify (send READY=1 after --delay),
--record FILE (append "pid signal" lines for signals received), --ping SECONDS (WATCHDOG=1 that
often), --health-dir DIR (GET /health is 500 while DIR/unhealthy-PID exists, else 200),
--grow MB (hold that much more memory once ready).
"""
import argparse, json, os, select, signal, socket, sys, time

p = argparse.ArgumentParser()
p.add_argument("--exit", type=int, default=None)
p.add_argument("--ignore-term", action="store_true")
p.add_argument("--notify", action="store_true")
p.add_argument("--delay", type=float, default=0.0)
p.add_argument("--record", default=None)
p.add_argument("--ping", type=float, default=None)
p.add_argument("--health-dir", default=None)
p.add_argument("--grow", type=int, default=0)
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

listeners = [socket.socket(fileno=3 + i) for i in range(int(os.environ.get("LISTEN_FDS", "1")))]
for listener in listeners:
    listener.setblocking(False)
time.sleep(args.delay)
if args.notify:
    notify("READY=1\nSTATUS=serving")
ballast = bytearray(args.grow << 20)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1  # touch every page so it is resident
body_extra = {"pid": os.getpid(), "listen_pid": os.environ.get("LISTEN_PID"), "worker_id": os.environ.get("HYPERGLASS_WORKER_ID")}
next_ping = time.monotonic()
while not stopping:
    if args.ping and time.monotonic() >= next_ping:
        notify("WATCHDOG=1")
        next_ping = time.monotonic() + args.ping
    try:
        readable, _, _ = select.select(listeners, [], [], 0.05)
    except InterruptedError:
        continue
    for listener in readable:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        with conn:
            conn.settimeout(2)
            try:
                request = conn.recv(4096)
                status = b"200 OK"
                if request.startswith(b"GET /health") and args.health_dir and os.path.exists(f"{args.health_dir}/unhealthy-{os.getpid()}"):
                    status = b"500 Internal Server Error"
                body = json.dumps(body_extra).encode()
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                pass
record(f"{os.getpid()} exiting")
