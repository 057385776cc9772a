"""A dependency-free ASGI app for running uvicorn (or gunicorn with uvicorn workers) under hyperglass.

    GET /               200 "hello from asgi_app <worker id>"
    GET /health         200 "ok"
    GET /sleep?ms=N     200 after N ms (up to 60000): an in-flight request for drain tests
    ws://HOST/ws        WebSocket echo

Run it the way hyperglass does (fd 3 is the listening socket the supervisor passes):

    uvicorn --fd 3 --app-dir /etc/hyperglass-supervisor/examples asgi_app:app

Two things uvicorn itself does not do, which this app adds in its lifespan startup:

* READY=1 to NOTIFY_SOCKET, so the supervisor can use `readiness = notify` (uvicorn never notifies;
  lifespan startup runs after the app is imported and initialised, just before uvicorn starts accepting
  on the socket the supervisor already holds, so nothing is refused in between).
* Optionally (environment HYPERGLASS_WS_CLOSE_CODE=1001), close every open WebSocket with that code as
  soon as SIGTERM arrives, before uvicorn's own shutdown closes them with 1012 (service restart).
  The handler chains to uvicorn's, so the drain is otherwise uvicorn's own.
"""
import asyncio
import os
import signal
import socket
import sys
import urllib.parse

MAX_SLEEP_MS = 60_000
WORKER = os.environ.get("HYPERGLASS_WORKER_ID", "-")

# Send functions of the WebSockets that are open, for closing them on SIGTERM.
_open_websockets = set()


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
            print(f"asgi_app: sd_notify failed: {error}", file=sys.stderr)


def _close_websockets_first(code):
    """Installs a SIGTERM handler that closes open WebSockets with `code`, then calls uvicorn's handler."""
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    async def close_all_then_exit(signum, frame):
        # uvicorn's handler only after our close frames are written: called at once, its shutdown could run
        # in the same loop turn and close the WebSockets with 1012 first (seen under load).
        sends = [send({"type": "websocket.close", "code": code, "reason": "server shutting down"}) for send in list(_open_websockets)]
        await asyncio.gather(*sends, return_exceptions=True)
        if callable(previous):
            previous(signum, frame)

    def on_sigterm(signum, frame):
        # A Python signal handler runs on the main thread, the loop's; call_soon_threadsafe also wakes it.
        loop.call_soon_threadsafe(lambda: loop.create_task(close_all_then_exit(signum, frame)))

    signal.signal(signal.SIGTERM, on_sigterm)


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            code = os.environ.get("HYPERGLASS_WS_CLOSE_CODE")
            if code:
                _close_websockets_first(int(code))
            await send({"type": "lifespan.startup.complete"})
            sd_notify("READY=1")
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send, status, text):
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def http_route(scope, send):
    path = scope["path"]
    if scope["method"] not in ("GET", "HEAD"):
        return await respond(send, 405, "method not allowed\n")
    if path == "/":
        return await respond(send, 200, f"hello from asgi_app {WORKER}\n")
    if path == "/health":
        return await respond(send, 200, "ok\n")
    if path == "/sleep":
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
        try:
            ms = int(query.get("ms", ["0"])[0])
        except ValueError:
            ms = -1
        if not 0 <= ms <= MAX_SLEEP_MS:
            return await respond(send, 400, "ms must be 0..60000\n")
        await asyncio.sleep(ms / 1000)
        return await respond(send, 200, f"slept {ms} ms\n")
    return await respond(send, 404, "not found\n")


async def websocket_echo(scope, receive, send):
    if scope["path"] != "/ws":
        message = await receive()  # websocket.connect
        return await send({"type": "websocket.close", "code": 1008})
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    _open_websockets.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
    finally:
        _open_websockets.discard(send)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "http":
        return await http_route(scope, send)
    if scope["type"] == "websocket":
        return await websocket_echo(scope, receive, send)
