#!/bin/sh
# Runs accepting_survey.py against every server kind, REPS times each; JSON lines on stdout.
# Needs: uvicorn, gunicorn, websockets, uvloop (pip), node, go (apt golang-go), a built hyperglass-worker.
set -u
cd "$(dirname "$0")"
REPS=${REPS:-3}
W=${WORKER:-../../.build/debug/hyperglass-worker}
GO=${GO_SERVER:-/tmp/go_server}
S="python3 accepting_survey.py"
for i in $(seq "$REPS"); do
  SLOW_STARTUP=2 $S --label "uvicorn uvloop, 2 s lifespan startup" -- uvicorn --fd 3 --app-dir apps --loop uvloop slow_asgi:app
  SLOW_STARTUP=2 $S --label "uvicorn asyncio, 2 s lifespan startup" -- uvicorn --fd 3 --app-dir apps --loop asyncio slow_asgi:app
  SLOW_IMPORT=2 $S --label "uvicorn asyncio, 2 s import" -- uvicorn --fd 3 --app-dir apps --loop asyncio slow_asgi:app
  SLOW_IMPORT=2 $S --label "gunicorn sync -w 2, 2 s import" -- gunicorn -k sync -w 2 --chdir apps slow_wsgi:app
  SLOW_IMPORT=2 $S --label "gunicorn gthread -w 2, 2 s import" -- gunicorn -k gthread -w 2 --chdir apps slow_wsgi:app
  SLOW_STARTUP=2 $S --label "gunicorn UvicornWorker -w 2, 2 s startup" -- gunicorn -k uvicorn.workers.UvicornWorker -w 2 --chdir apps slow_asgi:app
  $S --label "websockets echo example" --path /health -- python3 ../../config/examples/echo_websockets.py
  SLOW_START=2000 $S --label "node http, 2 s sync start" -- node apps/node_server.js
  SLOW_IMPORT=2 $S --label "http.server HTTPServer, 2 s import" -- python3 apps/threading_http.py
  SLOW_IMPORT=2 THREADING=1 $S --label "ThreadingHTTPServer, 2 s import" -- python3 apps/threading_http.py
  SLOW_IMPORT=2 $S --label "blocking accept() loop, 2 s import" -- python3 apps/blocking_accept.py
  $S --label "go net/http" -- "$GO"
  SLOW_START=2 $S --label "go, 2 s between FileListener and Serve" -- "$GO"
  $S --label "hyperglass-worker" -- "$W"
  $S --timeout 6 --label "uvicorn, startup fails after 2 s" -- uvicorn --fd 3 --app-dir apps failing_asgi:app
done
