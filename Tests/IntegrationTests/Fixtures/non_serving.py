#!/usr/bin/env python3
"""Releases that never serve, for readiness tests (issue 25, item 2). Each looks, from /proc or from
outside, a little like a server:

  child-epoll     a forked child registers fd 3 in an epoll set and hangs; the worker hangs too
  blocked-loop    an asyncio server whose loop thread blocks right after start_server
  poll-no-accept  waits in poll on fd 3 and never accepts (a connection wakes it; it polls again later)
  accept-close    accepts every connection and closes it at once (only an HTTP check can tell)
"""
import asyncio, os, select, socket, sys, time

mode = sys.argv[1]
listener = socket.socket(fileno=3)
# O_NONBLOCK belongs to the open file all workers share: leave it set.
listener.setblocking(False)

if mode == "child-epoll":
    if os.fork() == 0:
        e = select.epoll()
        e.register(listener.fileno(), select.EPOLLIN)
        time.sleep(3600)
        os._exit(0)
    time.sleep(3600)
elif mode == "blocked-loop":
    async def main():
        await asyncio.start_server(lambda r, w: None, sock=listener)
        time.sleep(3600)
    asyncio.run(main())
elif mode == "poll-no-accept":
    p = select.poll()
    p.register(listener.fileno(), select.POLLIN)
    while True:
        p.poll(60_000)
        time.sleep(0.2)
elif mode == "accept-close":
    # Every inherited socket, the supervisor's private health socket included.
    sockets = [socket.socket(fileno=3 + i) for i in range(int(os.environ.get("LISTEN_FDS", "1")))]
    for s in sockets:
        s.setblocking(False)
    while True:
        readable, _, _ = select.select(sockets, [], [])
        try:
            conn, _ = readable[0].accept()
        except (BlockingIOError, InterruptedError):
            continue
        conn.close()
else:
    sys.exit(f"unknown mode {mode}")
