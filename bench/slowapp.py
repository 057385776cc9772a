#!/usr/bin/env python3
"""A hyperglass-like app for bench/autoscale.sh: each request holds its worker for seconds
(GET /hold?s=2 sleeps 2 s, like a looking-glass query waiting on a router), one request at a time
per worker.

- Under gunicorn (sync workers): `gunicorn -w 4 slowapp:app`.
- Under hyperglass: run as a program; it serves the same WSGI app on the inherited socket (fd 3,
  LISTEN_FDS as systemd passes it), one request at a time, like a gunicorn sync worker.
"""
import os, socket, sys, time
from urllib.parse import parse_qs


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    hold = float(query.get("s", ["0"])[0])
    if hold > 0:
        time.sleep(min(hold, 60))
    body = f"held {hold}s in pid {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        sys.exit("slowapp.py: no inherited socket (LISTEN_FDS/LISTEN_PID); run it under hyperglass or gunicorn")
    listener = socket.socket(fileno=3)
    server = WSGIServer(listener.getsockname()[:2] if listener.family != socket.AF_UNIX else ("localhost", 0),
                        Quiet, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    server.server_name, server.server_port = "localhost", 0
    server.setup_environ()
    server.set_app(app)
    server.serve_forever()
