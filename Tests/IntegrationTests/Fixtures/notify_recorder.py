#!/usr/bin/env python3
"""Plays systemd's part of the notify protocol for tests: binds a datagram socket at argv[1] and
appends every message it receives to argv[2], one message per line with newlines shown as '|'."""
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(out + ".ready", "w").close()
while True:
    data = s.recv(4096)
    with open(out, "a") as f:
        f.write(data.decode(errors="replace").replace("\n", "|") + "\n")
