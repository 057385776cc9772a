"""A dependency-free WSGI app for gunicorn's sync (or gthread) workers under hyperglass.

    GET /               200 "hello from wsgi_app <gunicorn worker pid>"
    GET /health         200 "ok"
    GET /sleep?ms=N     200 after N ms (up to 60000): an in-flight request for drain tests

    gunicorn --chdir /etc/hyperglass-supervisor/examples wsgi_app:app

gunicorn finds the supervisor's socket itself (LISTEN_FDS, when LISTEN_PID is its own pid) and tells
NOTIFY_SOCKET READY=1 once its arbiter is up, so this app needs no code for either.
WebSockets need an ASGI worker: see asgi_app.py and config/gunicorn.conf.
"""
import os
import time
import urllib.parse

MAX_SLEEP_MS = 60_000


def app(environ, start_response):
    def reply(status, text):
        body = text.encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    path = environ.get("PATH_INFO", "/")
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return reply("405 Method Not Allowed", "method not allowed\n")
    if path == "/":
        return reply("200 OK", f"hello from wsgi_app {os.getpid()}\n")
    if path == "/health":
        return reply("200 OK", "ok\n")
    if path == "/sleep":
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        try:
            ms = int(query.get("ms", ["0"])[0])
        except ValueError:
            ms = -1
        if not 0 <= ms <= MAX_SLEEP_MS:
            return reply("400 Bad Request", "ms must be 0..60000\n")
        time.sleep(ms / 1000)
        return reply("200 OK", f"slept {ms} ms\n")
    return reply("404 Not Found", "not found\n")
