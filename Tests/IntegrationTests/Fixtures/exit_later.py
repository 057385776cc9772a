#!/usr/bin/env python3
"""A broken release for readiness tests: exits with --status after --after seconds.

Without --serve it never touches its inherited socket, like an app whose startup fails (the hyperglass
API with Redis down logs "Application startup failed" and exits 0). With --serve it accepts and answers
on fd 3 until then, like an app that dies shortly after it started serving.
"""
import argparse, select, socket, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--after", type=float, default=2.0)
p.add_argument("--status", type=int, default=0)
p.add_argument("--serve", action="store_true")
args = p.parse_args()


def serve():
    listener = socket.socket(fileno=3)
    # O_NONBLOCK belongs to the open file, which every worker shares: clearing it (setblocking(True))
    # would make the other workers' accept() block. Wait in select, accept without blocking.
    listener.setblocking(False)
    while True:
        select.select([listener], [], [])
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        with conn:
            conn.settimeout(2)
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


if args.serve:
    threading.Thread(target=serve, daemon=True).start()
time.sleep(args.after)
sys.exit(args.status)
