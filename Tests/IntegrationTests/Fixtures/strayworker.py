#!/usr/bin/env python3
"""A worker that leaves a stray behind, as daemonising libraries and subprocess runners do.

It forks a helper that calls setsid() (leaving the worker's process group), ignores SIGTERM, keeps the
inherited listening socket (fd 3) open and sleeps; the helper appends its pid to --record FILE as
"PID stray". The worker itself serves nothing: it blocks in accept() on fd 3 (a plain blocking
server, no setblocking call), answers "ok", and exits on SIGTERM.
"""
import os, signal, socket, sys, time

record = sys.argv[sys.argv.index("--record") + 1] if "--record" in sys.argv else None

if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if record:
        with open(record, "a") as f:
            f.write(f"{os.getpid()} stray\n")
    while True:
        time.sleep(3600)

listener = socket.socket(fileno=3)
while True:
    connection, _ = listener.accept()
    connection.recv(4096)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    connection.close()
