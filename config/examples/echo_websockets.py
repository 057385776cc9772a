#!/usr/bin/env python3
"""A Python `websockets` echo server that runs as a hyperglass worker.

The shape of the websockets deployment example (serve, SIGTERM -> server.close()), with the socket
taken from the supervisor the way systemd socket activation passes it: fd 3, LISTEN_FDS, LISTEN_PID.

    ws://HOST/          echo (any path that asks for a WebSocket upgrade)
    GET /health         200 "ok"
    GET /sleep?ms=N     200 after N ms (up to 60000): an in-flight request for drain tests

On SIGTERM (what `hyperglass` sends when it stops or replaces a worker) the server stops accepting,
closes every WebSocket with 1001 (going away), lets in-flight HTTP requests finish, and exits 0.
It tells the supervisor READY=1 once it is serving (use `readiness = notify`).

Run alone (no LISTEN_FDS) it listens on localhost:8765.
Needs: pip install websockets  (13 or later: the new asyncio implementation).
"""
import asyncio
import http
import os
import signal
import socket
import sys
import urllib.parse

from websockets.asyncio.server import serve

SD_LISTEN_FDS_START = 3
MAX_SLEEP_MS = 60_000


def inherited_socket():
    """fd 3 when the sockets were passed to *this* process (LISTEN_PID), else None."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    # socket(fileno=) detects the family (TCP, IPv6 or Unix) from the fd itself.
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    # Not for our children: only this process was meant to use them.
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return sock


def sd_notify(state):
    """sd_notify(3) in a few lines: one datagram to NOTIFY_SOCKET; a no-op when it is unset."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as notify:
        try:
            notify.connect(address)
            notify.sendall(state.encode())
        except OSError as error:
            print(f"echo_websockets: sd_notify failed: {error}", file=sys.stderr)


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def process_request(connection, request):
    """Plain HTTP routes; returning None continues with the WebSocket handshake."""
    url = urllib.parse.urlsplit(request.path)
    if url.path == "/health":
        return connection.respond(http.HTTPStatus.OK, "ok\n")
    if url.path == "/sleep":
        try:
            ms = int(urllib.parse.parse_qs(url.query).get("ms", ["0"])[0])
        except ValueError:
            ms = -1
        if not 0 <= ms <= MAX_SLEEP_MS:
            return connection.respond(http.HTTPStatus.BAD_REQUEST, "ms must be 0..60000\n")
        await asyncio.sleep(ms / 1000)
        return connection.respond(http.HTTPStatus.OK, f"slept {ms} ms\n")
    return None


async def main():
    sock = inherited_socket()
    where = {"sock": sock} if sock else {"host": "localhost", "port": 8765}
    worker = os.environ.get("HYPERGLASS_WORKER_ID", "-")
    async with serve(echo, process_request=process_request, **where) as server:
        loop = asyncio.get_running_loop()
        # server.close() closes open WebSockets with 1001 and waits for every handler, HTTP ones included.
        loop.add_signal_handler(signal.SIGTERM, server.close)
        loop.add_signal_handler(signal.SIGINT, server.close)
        sd_notify("READY=1")
        print(f"echo_websockets: worker {worker} pid {os.getpid()} serving", file=sys.stderr, flush=True)
        await server.wait_closed()
    print(f"echo_websockets: worker {worker} pid {os.getpid()} drained", file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
