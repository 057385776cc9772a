#!/usr/bin/env bash
# autoscale.sh: a hyperglass-like load against fixed pools, an autoscaling pool and Gunicorn.
#
# What:   the same bursts (default: 2 bursts 20 s apart, each 24 requests spread over 2 s, each
#         request holding its worker 2 s, as a looking-glass query waits on a router; client timeout
#         10 s) against, in one run:
#           (a) hyperglass, fixed pool of 2 workers
#           (b) hyperglass, fixed pool of 2 x CPUs
#           (c) hyperglass, workers = auto:1-16 (autoscaling, default delays)
#           (d) gunicorn, 2 x CPUs sync workers
#         The app is bench/slowapp.py (one request at a time per worker, like a Gunicorn sync worker;
#         under hyperglass on the inherited fd 3). Per setup: p50/p99/max latency, timeouts, errors;
#         for (c) the time from a burst's first request to the first scale-up, the peak count, and the
#         time from the last answer back to the floor; for every setup the supervisor's (or the
#         arbiter's) own CPU time over the run; for (c) its context switches over IDLE seconds idle at
#         the floor afterwards (autoscaling takes no samples there).
# Usage:  bench/autoscale.sh        (env: BIN, BURSTS=2, REQUESTS=24, SPREAD=2, HOLD=2, GAP=20,
#                                   TIMEOUT=10, RANGE=1-16, IDLE=10, PORT=18451)
source "$(dirname "$0")/lib.sh"

BURSTS=${BURSTS:-2}; REQUESTS=${REQUESTS:-24}; SPREAD=${SPREAD:-2}; HOLD=${HOLD:-2}; GAP=${GAP:-20}
TIMEOUT=${TIMEOUT:-10}; RANGE=${RANGE:-1-16}; IDLE=${IDLE:-10}; PORT=${PORT:-18451}
CPUS=$(nproc)
APP=$BENCH_DIR/slowapp.py
LOAD=(python3 "$BENCH_DIR/burstload.py" --bursts "$BURSTS" --requests "$REQUESTS" --spread "$SPREAD"
      --hold "$HOLD" --gap "$GAP" --timeout "$TIMEOUT")
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' /proc/"$1"/stat; }

echo "# autoscale: $(date -u +%FT%TZ), $CPUS CPUs, $(uname -r), BIN=$BIN, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BURSTS bursts ${GAP}s apart, each $REQUESTS requests over ${SPREAD}s holding a worker ${HOLD}s; client timeout ${TIMEOUT}s"

run_hyperglass() {  # LABEL WORKERS [SETTLE FLOOR]
    local label=$1 workers=$2 settle=${3:-0} floor=${4:-0} sock=$WORK/$RANDOM.sock port=$((PORT++))
    "$BIN/hyperglass" start --workers "$workers" --bind "127.0.0.1:$port" --control-socket "$sock" \
        --readiness exec -- "$APP" >"$WORK/$label.log" 2>&1 &
    local hpid=$!; track "$hpid"
    local start=${workers#auto:}; start=${start%-*}
    if ! wait_until 30 pool_ready "$sock" "$start"; then echo "$label: pool not ready" >&2; cat "$WORK/$label.log" >&2; return 1; fi
    sleep 1
    local c0; c0=$(cpu_ms "$hpid")
    local extra=()
    if (( settle > 0 )); then extra=(--control "$sock" --floor "$floor" --settle "$settle"); fi
    "${LOAD[@]}" "$port" --label "$label" "${extra[@]}"
    echo "    supervisor CPU during the run: $(( $(cpu_ms "$hpid") - c0 )) ms"
    if (( settle > 0 )); then
        local s0 s1; s0=$(ctxt "$hpid"); sleep "$IDLE"; s1=$(ctxt "$hpid")
        echo "    idle at the floor: $((s1 - s0)) context switches in ${IDLE}s"
        grep -E "autoscaling" "$WORK/$label.log" | sed 's/^hyperglass\[[0-9]*\]: /    log: /' | head -12
    fi
    stop_pid "$hpid"
}

run_hyperglass "hyperglass fixed 2" 2
run_hyperglass "hyperglass fixed $((2 * CPUS)) (2xCPUs)" $((2 * CPUS))
run_hyperglass "hyperglass auto:$RANGE" "auto:$RANGE" 180 "${RANGE%-*}"

port=$((PORT++))
(cd "$BENCH_DIR" && exec gunicorn -w $((2 * CPUS)) -b "127.0.0.1:$port" --backlog 2048 --timeout 60 slowapp:app) \
    >"$WORK/gunicorn.log" 2>&1 &
GPID=$!; track "$GPID"
wait_until 30 has_children "$GPID" $((2 * CPUS)) || { echo "gunicorn did not start" >&2; cat "$WORK/gunicorn.log" >&2; exit 1; }
wait_until 30 curl -sf -m 2 "http://127.0.0.1:$port/hold?s=0" || { echo "gunicorn does not answer" >&2; exit 1; }
sleep 1
g0=$(cpu_ms "$GPID")
"${LOAD[@]}" "$port" --label "gunicorn $((2 * CPUS)) sync (2xCPUs)"
echo "    arbiter CPU during the run: $(( $(cpu_ms "$GPID") - g0 )) ms"
