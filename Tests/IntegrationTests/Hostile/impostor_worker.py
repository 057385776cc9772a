#!/usr/bin/env python3
"""A worker run as root that impersonates its sibling: worker 1 sends WATCHDOG=trigger to its
NOTIFY_SOCKET with worker 0's pid in SCM_CREDENTIALS (root may claim any pid). Every worker then idles."""
import os, socket, struct, time

def sibling(worker_id):
    parent = os.getppid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            if int(stat[1]) != parent:
                continue
            if f"HYPERGLASS_WORKER_ID={worker_id}".encode() in open(f"/proc/{entry}/environ", "rb").read().split(b"\0"):
                return int(entry)
        except OSError:
            pass
    return None

if os.environ.get("HYPERGLASS_WORKER_ID") == "1":
    victim = None
    for _ in range(100):
        victim = sibling("0")
        if victim:
            break
        time.sleep(0.05)
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        credentials = struct.pack("iII", victim, 0, 0)
        s.sendmsg([b"WATCHDOG=trigger"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, credentials)], 0, address)
    print(f"impostor {os.getpid()} sent WATCHDOG=trigger as pid {victim}", flush=True)
while True:
    time.sleep(1)
