"""WSGI app for the survey: 2 s import (SLOW_IMPORT)."""
import os, time
time.sleep(float(os.environ.get("SLOW_IMPORT", "0")))

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
