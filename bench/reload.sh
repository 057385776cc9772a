#!/usr/bin/env bash
# reload.sh: a full rolling reload of 8 workers under constant HTTP load, hyperglass beside gunicorn.
#
# What:   for each setup, the time a full roll of WORKERS (default 8) workers takes and the requests
#         that failed meanwhile:
#           (a) hyperglass + the bundled hyperglass-worker, readiness notify, `hyperglassctl reload --wait`;
#           (b) hyperglass + `uvicorn --fd 3` serving config/examples/asgi_app.py (as config/uvicorn.conf:
#               READY=1 from the app's lifespan, readiness notify), `hyperglassctl reload --wait`;
#           (c) gunicorn from PyPI, `-k uvicorn.workers.UvicornWorker -w 8`, the same ASGI app,
#               reloaded with SIGHUP (gunicorn's own reload);
#           (d) hyperglass + `uvicorn --fd 3` with the defaults (readiness accepting, min_ready 3s,
#               max_surge 25%), `hyperglassctl reload --wait`;
#           (e) hyperglass + the bundled hyperglass-worker with the defaults, `hyperglassctl reload --wait`.
#         For (d) and (e) it also prints the new workers' start-up (ready after start, from the log) and
#         the issue-23 bound 2 × (start-up + min_ready), with the slowest start-up seen.
# How:    Tests/IntegrationTests/Fixtures/load_client.py runs against
#         the pool the whole time: RATE (default 300) requests/s each on a new connection, plus
#         KEEPALIVE (default 4) kept-alive connections sending requests back to back. After 2 s of
#         warm-up, bench/rollwatch.py records the pool's worker pids from /proc, fires the reload and
#         samples /proc every 2 ms until every old pid is gone and 8 new ones are alive ("replaced");
#         for hyperglass it also records when `reload --wait` returned ("reload --wait"). ROLLS
#         (default 3) rolls, 2 s apart, per setup; then 1 s more load, and the load client's counts
#         (whole run, warm-up included) are printed. Gunicorn has no "roll finished" signal: its roll
#         is complete when all 8 original worker pids have been replaced, as seen in /proc.
# Target: (issue 6) 0 failed requests on new connections during `reload --wait`; 0 keep-alive resets
#         with hyperglass-worker; report the roll time beside gunicorn's HUP under the same load.
# Usage:  bench/reload.sh [a] [b] [c] [d] [e]  (default: a b c; env: BIN, WORKERS=8, RATE=300,
#                                          KEEPALIVE=4, ROLLS=3, PORT_A=18431, PORT_B=18432, PORT_C=18433)
source "$(dirname "$0")/lib.sh"

WORKERS=${WORKERS:-8}
RATE=${RATE:-300}
KEEPALIVE=${KEEPALIVE:-4}
ROLLS=${ROLLS:-3}
PORT_A=${PORT_A:-18431}
PORT_B=${PORT_B:-18432}
PORT_C=${PORT_C:-18433}
PORT_D=${PORT_D:-18434}
PORT_E=${PORT_E:-18435}
SETUPS=("$@")
# The programs themselves, not pyenv's shims (which exec them, but start slower).
UVICORN=$( (pyenv which uvicorn || command -v uvicorn) 2>/dev/null | head -1)
GUNICORN=$( (pyenv which gunicorn || command -v gunicorn) 2>/dev/null | head -1)
(( ${#SETUPS[@]} )) || SETUPS=(a b c)

LOAD_PID=""
start_load() {  # start_load PORT: the load client on PORT, its stdin held open on fd 7
    mkfifo "$WORK/load.in"
    python3 "$LOAD_CLIENT" --port "$1" --rate "$RATE" --keepalive "$KEEPALIVE" --seconds 600 \
        <"$WORK/load.in" >"$WORK/load.out" 2>"$WORK/load.err" &
    LOAD_PID=$!; track "$LOAD_PID"
    exec 7>"$WORK/load.in"
    wait_until 10 grep -q running "$WORK/load.out" || { echo "the load client did not start" >&2; cat "$WORK/load.err" >&2; exit 1; }
}
LOAD_RESULT=""
load_finished() { [[ $(wc -l <"$WORK/load.out") -ge 2 ]]; }
stop_load() {  # stop_load: closes the load client's stdin (not in a subshell); its JSON counts in LOAD_RESULT
    exec 7>&-
    wait_until 20 load_finished || echo "the load client did not finish within 20 s" >&2
    stop_pid "$LOAD_PID"
    rm -f "$WORK/load.in"
    LOAD_RESULT=$(tail -n 1 "$WORK/load.out")
}

summarize() {  # summarize LABEL ROLL_JSON_FILE LOAD_JSON
    python3 - "$1" "$2" "$3" "$WORKERS" <<'PY'
import json, statistics, sys
label, rolls_file, load, workers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
rolls = [json.loads(line) for line in open(rolls_file) if line.strip()]
def fmt(values):
    values = [v for v in values if v is not None]
    return "n/a" if not values else f"{statistics.median(values):.2f} s (runs: " + ", ".join(f"{v:.2f}" for v in values) + ")"
print(f"== {label}")
for r in rolls:
    if r["trigger_exit"] != 0 or r["replaced_seconds"] is None:
        print(f"   roll problem: {json.dumps(r)}")
if any(r["trigger_output"] for r in rolls):
    print(f"   trigger said: {rolls[-1]['trigger_output']}")
if "reload" in label or "hyperglass" in label:
    print(f"   reload --wait returned after   {fmt([r['trigger_seconds'] for r in rolls])}")
print(f"   all {workers} old pids replaced after {fmt([r['replaced_seconds'] for r in rolls])}")
print(f"   live workers during the rolls: min {min(r['min_live'] for r in rolls)}, max {max(r['max_live'] for r in rolls)}")
print(f"   load over the whole run: new connections {load['new_ok']} ok / {load['new_failed']} failed; "
      f"kept-alive {load['keepalive_ok']} ok / {load['keepalive_resets']} resets ({load['keepalive_reopened']} politely closed and reopened)")
from collections import Counter
for error, n in Counter(load.get("errors", [])).most_common():
    print(f"   error (x{n} of the first 10 per kind): {error}")
PY
}

run_rolls() {  # run_rolls PARENT_PID OUTFILE TRIGGER...: ROLLS rolls under the running load
    local parent=$1 out=$2 i; shift 2
    : >"$out"
    sleep 2
    for ((i = 0; i < ROLLS; i++)); do
        timeout 150 python3 "$BENCH_DIR/rollwatch.py" --pid "$parent" --workers "$WORKERS" --timeout 120 -- "$@" >>"$out" \
            || echo '{"trigger_exit": -1, "trigger_seconds": null, "trigger_output": "rollwatch failed", "replaced_seconds": null, "min_live": 0, "max_live": 0}' >>"$out"
        # Let the drained generation finish before the next roll (bounded).
        wait_until 30 has_children "$parent" "$WORKERS" || true
        sleep 2
    done
    sleep 1
}

echo "# reload: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), $WORKERS workers, load $RATE new-connection req/s + $KEEPALIVE kept-alive connections, $ROLLS rolls per setup, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# python $(python3 -c 'import sys; print(sys.version.split()[0])'), uvicorn $(python3 -c 'import uvicorn; print(uvicorn.__version__)' 2>/dev/null || echo missing), gunicorn $(python3 -c 'import gunicorn; print(gunicorn.__version__)' 2>/dev/null || echo missing)"

startups() {  # startups LOG: the new workers' start-up ("ready (pid N, 1.2s after start)"), after the first WORKERS
    python3 - "$1" "$WORKERS" <<'PY'
import re, statistics, sys
seconds = []
for m in re.finditer(r"ready \(pid \d+, ([0-9.]+)(ms|s) after start\)", open(sys.argv[1]).read()):
    seconds.append(float(m.group(1)) / (1000 if m.group(2) == "ms" else 1))
new = seconds[int(sys.argv[2]):]
if new:
    print(f"   new workers' start-up: median {statistics.median(new):.2f} s, slowest {max(new):.2f} s; "
          f"bound 2 x (start-up + min_ready 3 s) = {2 * (statistics.median(new) + 3):.2f} s (median), {2 * (max(new) + 3):.2f} s (slowest)")
PY
}

READINESS_FLAGS=(--readiness notify)
hyperglass_setup() {  # hyperglass_setup LABEL PORT [-- COMMAND...]
    local label=$1 port=$2; shift 2
    local sock=$WORK/$port.sock
    "$BIN/hyperglass" start --workers "$WORKERS" --bind "127.0.0.1:$port" --control-socket "$sock" \
        "${READINESS_FLAGS[@]}" --ready-timeout 60s --graceful-timeout 30s "$@" >"$WORK/hyperglass-$port.log" 2>&1 &
    local hpid=$!; track "$hpid"
    if ! wait_until 60 pool_ready "$sock" "$WORKERS"; then
        echo "$label: $WORKERS workers not ready within 60 s" >&2; tail -20 "$WORK/hyperglass-$port.log" >&2; stop_pid "$hpid"; return 1
    fi
    start_load "$port"
    run_rolls "$hpid" "$WORK/rolls-$port" "$BIN/hyperglassctl" --socket "$sock" reload --wait
    stop_load
    summarize "$label" "$WORK/rolls-$port" "$LOAD_RESULT"
    (( ${#READINESS_FLAGS[@]} )) || startups "$WORK/hyperglass-$port.log"
    stop_pid "$hpid"
}

for setup in "${SETUPS[@]}"; do
    case $setup in
    a)
        hyperglass_setup "(a) hyperglass + hyperglass-worker (readiness notify), hyperglassctl reload --wait" "$PORT_A"
        ;;
    b)
        hyperglass_setup "(b) hyperglass + uvicorn --fd 3 asgi_app (readiness notify), hyperglassctl reload --wait" "$PORT_B" \
            --environment PYTHONUNBUFFERED=1 -- \
            "$UVICORN" --fd 3 --lifespan on --timeout-graceful-shutdown 25 --no-access-log --app-dir "$EXAMPLES" asgi_app:app
        ;;
    d)
        READINESS_FLAGS=()
        hyperglass_setup "(d) hyperglass + uvicorn --fd 3 asgi_app, defaults (accepting, min_ready 3s, max_surge 25%), hyperglassctl reload --wait" "$PORT_D" \
            --environment PYTHONUNBUFFERED=1 -- \
            "$UVICORN" --fd 3 --lifespan on --timeout-graceful-shutdown 25 --no-access-log --app-dir "$EXAMPLES" asgi_app:app
        READINESS_FLAGS=(--readiness notify)
        ;;
    e)
        READINESS_FLAGS=()
        hyperglass_setup "(e) hyperglass + hyperglass-worker, defaults (accepting, min_ready 3s, max_surge 25%), hyperglassctl reload --wait" "$PORT_E"
        READINESS_FLAGS=(--readiness notify)
        ;;
    c)
        extra=()
        "$GUNICORN" --help 2>/dev/null | grep -q -- --no-control-socket && extra+=(--no-control-socket)
        "$GUNICORN" --workers "$WORKERS" --worker-class uvicorn.workers.UvicornWorker --bind "127.0.0.1:$PORT_C" \
            --graceful-timeout 25 --chdir "$EXAMPLES" "${extra[@]}" asgi_app:app >"$WORK/gunicorn.log" 2>&1 &
        GPID=$!; track "$GPID"
        if ! wait_until 60 has_children "$GPID" "$WORKERS" || ! wait_until 30 curl -fsS "http://127.0.0.1:$PORT_C/health"; then
            echo "gunicorn did not come up" >&2; tail -20 "$WORK/gunicorn.log" >&2; exit 1
        fi
        sleep 2  # every worker has loaded the app
        start_load "$PORT_C"
        run_rolls "$GPID" "$WORK/rolls-$PORT_C" kill -HUP "$GPID"
        stop_load
        summarize "(c) gunicorn -k uvicorn.workers.UvicornWorker -w $WORKERS, kill -HUP (roll done = all pids replaced in /proc)" \
            "$WORK/rolls-$PORT_C" "$LOAD_RESULT"
        stop_pid "$GPID"
        ;;
    *) echo "unknown setup $setup (a, b or c)" >&2; exit 2 ;;
    esac
done
