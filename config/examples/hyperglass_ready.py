"""The hyperglass looking glass's web API (hyperglass.api:app), plus READY=1 to the supervisor.

    uvicorn --fd 3 --lifespan on --app-dir /etc/hyperglass-supervisor/examples hyperglass_ready:app

hyperglass never tells anyone it is ready, so a supervisor can only guess. This wrapper sends READY=1
to NOTIFY_SOCKET once hyperglass's ASGI lifespan startup has completed: the application is imported
(1.5-2.5 s), its configuration validated and its Redis check passed. uvicorn starts accepting on the
socket the supervisor already holds right after that, so nothing is refused in between. With
`readiness = notify` (config/hyperglass.conf) a reload therefore drains an old worker only once its
successor can serve, and a successor that cannot start (Redis down, a broken hyperglass.yaml, a bad
upgrade) stops the reload with the old workers still serving.

It also closes one gap in uvicorn 0.13's drain: on SIGTERM uvicorn stops accepting, then at once closes
every connection with no request in progress, including one it accepted a moment ago whose request is
still unread in the socket buffer. The client sees a reset (measured: 0-2 failed requests in ~4,500
during a roll of 4 workers). Here such a connection is looked at again DRAIN_GRACE later instead: by
then its request is being served (and answered with Connection: close), or it really is idle and is
closed. Everything else is hyperglass's and uvicorn's own. Measured in docs/hyperglass.md.
"""
import os
import socket
import sys

from hyperglass.api import app as hyperglass_app

DRAIN_GRACE = 0.5  # seconds


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
            print(f"hyperglass_ready: sd_notify failed: {error}", file=sys.stderr)


async def app(scope, receive, send):
    if scope["type"] != "lifespan":
        return await hyperglass_app(scope, receive, send)

    async def send_then_notify(message):
        await send(message)
        if message["type"] == "lifespan.startup.complete":
            sd_notify("READY=1")

    return await hyperglass_app(scope, receive, send_then_notify)


def _patient_shutdown(protocol_class):
    """Wraps a uvicorn HTTP protocol's shutdown(): an idle connection is closed DRAIN_GRACE later, not now."""
    close_now = protocol_class.shutdown

    def shutdown(self):
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(DRAIN_GRACE, lambda: self.transport.is_closing() or close_now(self))
        else:
            close_now(self)

    protocol_class.shutdown = shutdown


for _module, _name in (("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
                       ("uvicorn.protocols.http.h11_impl", "H11Protocol")):
    try:
        _patient_shutdown(getattr(__import__(_module, fromlist=[_name]), _name))
    except ImportError:  # httptools or h11 not installed: uvicorn will not use that protocol either
        pass
