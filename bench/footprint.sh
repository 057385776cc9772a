#!/usr/bin/env bash
# footprint.sh: the supervisor's memory and idle wake-ups, beside gunicorn's arbiter.
#
# What:   (1) VmRSS of the `hyperglass start` process (from /proc/PID/status; also VmHWM and the
#             anonymous/file split) with 16 bundled hyperglass-worker processes ready;
#         (2) its voluntary + nonvoluntary context switches (summed over its threads) during
#             IDLE_SECONDS (default 20) of no traffic and no control requests;
#         (3) the same two numbers for gunicorn's arbiter with 16 sync workers of
#             config/examples/wsgi_app.py, over the same window.
# How:    start each on a loopback port, wait (bounded) until all 16 workers are up, let it settle
#         2 s, read /proc, sleep IDLE_SECONDS, read /proc again. Run without NOTIFY_SOCKET and
#         WATCHDOG_USEC (lib.sh unsets them), so no systemd watchdog timer is due.
# Target: supervisor VmRSS <= 6 MiB with 16 workers (release build, --static-swift-stdlib);
#         0 context switches over the idle window (no wake-up when no timer is due).
#         gunicorn's arbiter is the comparison: it wakes up about once a second by design.
# Usage:  bench/footprint.sh            (env: BIN, WORKERS=16, IDLE_SECONDS=20, PORT_H=18411,
#                                        PORT_G=18412, SKIP_GUNICORN=1)
source "$(dirname "$0")/lib.sh"

WORKERS=${WORKERS:-16}
IDLE_SECONDS=${IDLE_SECONDS:-20}
PORT_H=${PORT_H:-18411}
PORT_G=${PORT_G:-18412}

measure() {  # measure NAME PID: prints the rows for one supervisor/arbiter
    local name=$1 pid=$2
    sleep 2
    local rss hwm anon file threads c0 v0n0 c1 v1n1
    rss=$(proc_field "$pid" VmRSS); hwm=$(proc_field "$pid" VmHWM)
    anon=$(proc_field "$pid" RssAnon); file=$(proc_field "$pid" RssFile)
    threads=$(proc_field "$pid" Threads)
    v0n0=$(ctxt_split "$pid")
    sleep "$IDLE_SECONDS"
    v1n1=$(ctxt_split "$pid")
    local rss_after; rss_after=$(proc_field "$pid" VmRSS)
    read -r v0 n0 <<<"$v0n0"; read -r v1 n1 <<<"$v1n1"
    printf '%-34s VmRSS %s MiB (%s kB; anon %s kB, file %s kB; VmHWM %s kB; after idle %s kB), threads %s\n' \
        "$name" "$(kib_to_mib "$rss")" "$rss" "$anon" "$file" "$hwm" "$rss_after" "$threads"
    local pss; pss=$(awk '$1 == "Pss:" {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo "?")
    printf '%-34s Pss %s kB (shared library pages divided among the processes mapping them)\n' "$name" "$pss"
    printf '%-34s context switches over %s s idle: %d (voluntary %d, nonvoluntary %d)\n' \
        "$name" "$IDLE_SECONDS" $(( v1 - v0 + n1 - n0 )) $(( v1 - v0 )) $(( n1 - n0 ))
}

echo "# footprint: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), $WORKERS workers, idle window ${IDLE_SECONDS} s"

# --- hyperglass with the bundled worker ---------------------------------------------------------
"$BIN/hyperglass" start --workers "$WORKERS" --bind "127.0.0.1:$PORT_H" --control-socket "$WORK/h.sock" \
    --readiness notify >"$WORK/hyperglass.log" 2>&1 &
HPID=$!; track "$HPID"
if ! wait_until 30 pool_ready "$WORK/h.sock" "$WORKERS"; then
    echo "hyperglass did not get $WORKERS workers ready within 30 s" >&2; cat "$WORK/hyperglass.log" >&2; exit 1
fi
# Measure without touching the control socket again: `status` itself would be a wake-up.
measure "hyperglass (pid $HPID, $WORKERS workers)" "$HPID"
echo "hyperglass                         resident kB by mapping (the file-backed part is code pages):"
awk '/^[0-9a-f]+-/ {name = ($6 == "" ? "[anon]" : $6)} /^Rss:/ {rss[name] += $2}
     END {for (n in rss) if (rss[n] > 0) printf "    %6d  %s\n", rss[n], n}' "/proc/$HPID/smaps" | sort -rn | head -16
live=$(children_of "$HPID")
worker_rss=$(for p in $(cat /proc/"$HPID"/task/*/children); do proc_field "$p" VmRSS; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "hyperglass                         $live live workers; a bundled worker's VmRSS (median) $(kib_to_mib "$worker_rss") MiB"
stop_pid "$HPID"

# --- gunicorn with sync workers -----------------------------------------------------------------
if [[ ${SKIP_GUNICORN:-0} != 1 ]]; then
    if ! command -v gunicorn >/dev/null; then
        echo "gunicorn not found (python3 -m pip install gunicorn); skipping the comparison"
        exit 0
    fi
    extra=()
    gunicorn --help 2>/dev/null | grep -q -- --no-control-socket && extra+=(--no-control-socket)
    gunicorn --workers "$WORKERS" --worker-class sync --bind "127.0.0.1:$PORT_G" --chdir "$EXAMPLES" \
        "${extra[@]}" wsgi_app:app >"$WORK/gunicorn.log" 2>&1 &
    GPID=$!; track "$GPID"
    if ! wait_until 60 has_children "$GPID" "$WORKERS"; then
        echo "gunicorn did not start $WORKERS workers within 60 s" >&2; cat "$WORK/gunicorn.log" >&2; exit 1
    fi
    # Workers import the app after fork; give them a moment.
    wait_until 10 curl -fsS "http://127.0.0.1:$PORT_G/health" || true
    measure "gunicorn $(python3 -c 'import gunicorn; print(gunicorn.__version__)') arbiter (pid $GPID, $WORKERS sync)" "$GPID"
    stop_pid "$GPID"
fi
