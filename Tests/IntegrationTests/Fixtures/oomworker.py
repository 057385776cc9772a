#!/usr/bin/env python3
"""A blocking-accept worker; worker 0 of its first generation (no --record FILE entry yet) grows by
16 MiB every 20 ms once started, until the kernel's OOM killer ends it. Each start appends
"PID started WORKER_ID" to --record FILE."""
import os, socket, sys, threading, time

record = sys.argv[sys.argv.index("--record") + 1]
worker = os.environ.get("HYPERGLASS_WORKER_ID")
first = not os.path.exists(record) or f" started {worker}\n" not in open(record).read()
with open(record, "a") as f:
    f.write(f"{os.getpid()} started {worker}\n")

def grow():
    hoard = []
    while True:
        hoard.append(bytearray(16 << 20))  # zero-filled: touched, so resident
        time.sleep(0.02)

if worker == "0" and first:
    threading.Thread(target=grow, daemon=True).start()

listener = socket.socket(fileno=3)
while True:
    connection, _ = listener.accept()
    connection.recv(4096)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    connection.close()
