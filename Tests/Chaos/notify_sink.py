#!/usr/bin/env python3
"""Plays systemd's notify socket for the chaos test, in a process of its own that does nothing else.

libsystemd's sd_notify sends with a blocking sendmsg: when the reader falls 10 datagrams behind
(net.unix.max_dgram_qlen) the supervisor's whole loop waits for it. A reader sharing the driver's
interpreter lock fell that far behind on a busy machine, so it is this small loop instead, at a higher
priority when we may. Usage: notify_sink.py SOCKET_PATH OUT_FILE; one line per datagram in OUT_FILE:
its arrival on CLOCK_REALTIME as stamped by the kernel (SO_TIMESTAMPNS), then the message with
newlines shown as '|'. Ends when its parent closes its stdin.
"""
import os, socket, struct, sys, threading

SO_TIMESTAMPNS = 35
path, out = sys.argv[1], sys.argv[2]
try:
    os.nice(-10)
except OSError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.bind(path)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print("ready", flush=True)
with open(out, "w", buffering=1) as f:
    while True:
        data, ancillary, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16))
        stamp = 0.0
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                stamp = seconds + nanoseconds / 1e9
        f.write(f"{stamp:.6f} " + data.decode(errors="replace").replace("\n", "|") + "\n")
