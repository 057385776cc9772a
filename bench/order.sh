#!/usr/bin/env bash
# order.sh: records bench/supervisor.order, the functions the supervisor runs, for `make release` to lay
# out together (lld --symbol-ordering-file): fewer code pages touched, a smaller resident footprint.
#
# What:   runs the release `hyperglass start` under callgrind (valgrind) through what an operator does:
#         start with 4 bundled workers, ping, status, status --json, metrics (control and /metrics),
#         events, scale to 6 and back, a worker SIGKILLed and replaced, reload --wait, restart all --wait,
#         SIGTERM. Then writes every function of the hyperglass binary that ran, in the order callgrind
#         first saw it (the names are linker symbols: mangled, as the ordering file wants them).
# When:   after code changes that the supervisor runs (bench/footprint.sh's VmRSS creeping up is the sign;
#         a stale file costs memory only, never correctness: unknown names are ignored).
# Usage:  bench/order.sh [OUT]     (default bench/supervisor.order; env BIN as for the other scripts)
source "$(dirname "$0")/lib.sh"

OUT=${1:-$BENCH_DIR/supervisor.order}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
PORT=${PORT_O:-18451}
METRICS=${PORT_OM:-18452}
SOCK=$WORK/o.sock
CTL=("$BIN/hyperglassctl" --socket "$SOCK")

# valgrind 3.19 (Debian 12) cannot read the toolchain's DWARF 5: a copy without debug information, its
# symbol table kept (the names are what we want), beside the bundled worker it starts.
mkdir "$WORK/bin"
objcopy --strip-debug "$BIN/hyperglass" "$WORK/bin/hyperglass"
ln -s "$(readlink -f "$BIN/hyperglass-worker")" "$WORK/bin/hyperglass-worker"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/callgrind.out.%p" \
    "$WORK/bin/hyperglass" start --workers 4 --bind "127.0.0.1:$PORT" --control-socket "$SOCK" \
    --metrics-bind "127.0.0.1:$METRICS" >"$WORK/hyperglass.log" 2>&1 &
VPID=$!; track "$VPID"
if ! wait_until 120 pool_ready "$SOCK" 4; then
    echo "the supervisor under valgrind did not get 4 workers ready within 120 s" >&2; cat "$WORK/hyperglass.log" >&2; exit 1
fi
# Each step is best effort (under valgrind the supervisor is ~50 times slower; a client may time out):
# what counts is that the code ran.
ctl() { "${CTL[@]}" "$@" >/dev/null 2>&1 || echo "note: hyperglassctl $* failed under valgrind" >&2; }
ctl ping
ctl status
ctl status --json
ctl metrics
ctl health
curl -sS "http://127.0.0.1:$METRICS/metrics" >/dev/null || true
curl -sS "http://127.0.0.1:$METRICS/readyz" >/dev/null || true
curl -sS "http://127.0.0.1:$METRICS/livez" >/dev/null || true
timeout 3 "${CTL[@]}" events >/dev/null 2>&1 || true
ctl workers 6
wait_until 120 pool_ready "$SOCK" 6 || true
ctl workers 4
sleep 3
victim=$(cat /proc/"$VPID"/task/*/children | tr ' ' '\n' | head -1)
kill -KILL "$victim"
wait_until 120 pool_ready "$SOCK" 4 || true
sleep 1
ctl reload --wait
ctl restart all --wait
ctl status
stop_pid "$VPID"
[[ -n ${KEEP_LOG:-} ]] && { cp "$WORK/hyperglass.log" "$KEEP_LOG"; ls -la "$WORK" >>"$KEEP_LOG"; }

# callgrind's compressed names: "ob=(N) PATH" or "fn=(M) NAME" define a number at first use, which may be
# in a callee line (cob=, cfn=); later lines give the number alone. A function ran if it has an fn= block;
# it belongs to the binary if the ob= in force there is ours.
binary=$WORK/bin/hyperglass
awk -v binary="$binary" '
    function resolve(spec, table,    id) {
        if (match(spec, /^\([0-9]+\) /)) { id = substr(spec, 1, RLENGTH - 1); table[id] = substr(spec, RLENGTH + 1); return table[id] }
        if (spec ~ /^\([0-9]+\)$/) return table[spec]
        return spec
    }
    /^ob=/  { current = resolve(substr($0, 4), obs); next }
    /^cob=/ { resolve(substr($0, 5), obs); next }
    /^cfn=/ { resolve(substr($0, 5), fns); next }
    /^fn=/  { name = resolve(substr($0, 4), fns)
              if (current == binary && name != "" && !(name in seen)) { seen[name] = 1; print name } }
' "$WORK/callgrind.out.$VPID" >"$WORK/order"
count=$(wc -l <"$WORK/order")
if (( count < 200 )); then
    echo "only $count functions recorded; keeping $OUT as it is" >&2; exit 1
fi
mv "$WORK/order" "$OUT"
echo "wrote $OUT: $count functions of $BIN/hyperglass"
