#!/usr/bin/env python3
"""A worker that serves one connection at a time on its inherited sockets (fds 3.., LISTEN_FDS) and
holds each for --hold seconds before answering, like a sync worker waiting on a slow backend: while it
holds one, the next connections wait in the kernel's accept queue, where the supervisor can see them."""
import argparse, os, select, socket, sys, time

p = argparse.ArgumentParser()
p.add_argument("--hold", type=float, default=3.0)
args = p.parse_args()
if os.environ.get("LISTEN_PID") != str(os.getpid()):
    sys.exit("slowworker.py: LISTEN_PID is not ours")
listeners = [socket.socket(fileno=3 + i) for i in range(int(os.environ.get("LISTEN_FDS", "1")))]
while True:
    # The shared listeners are non-blocking: another worker may take the connection first.
    ready, _, _ = select.select(listeners, [], [])
    try:
        conn, _ = ready[0].accept()
    except BlockingIOError:
        continue
    with conn:
        conn.settimeout(10)
        try:
            conn.recv(4096)
            time.sleep(args.hold)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        except OSError:
            pass
