# Shared helpers for the bench/ scripts (sourced, not run).
#
# BIN      directory holding hyperglass, hyperglassctl, hyperglass-worker
#          (default: the release static build in $REPO/.build-bench/release; build it with
#          `swift build -c release --static-swift-stdlib --scratch-path $REPO/.build-bench`).
# Every process a script starts is recorded with `track PID` and killed by pid (its process
# group too when it leads one) on exit, however the script ends. Every wait is bounded.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BIN=${BIN:-$REPO/.build-bench/release}
EXAMPLES=$REPO/config/examples
LOAD_CLIENT=$BENCH_DIR/../Tests/IntegrationTests/Fixtures/load_client.py

for program in hyperglass hyperglassctl hyperglass-worker; do
    if [[ ! -x $BIN/$program ]]; then
        echo "missing $BIN/$program: build with" >&2
        echo "  swift build -c release --static-swift-stdlib --scratch-path $REPO/.build-bench" >&2
        exit 2
    fi
done

# No timer may be due because of systemd's protocols: the supervisor must not see a notify
# socket or a watchdog from whoever runs the benchmark.
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID LISTEN_FDS LISTEN_PID LISTEN_FDNAMES HYPERGLASS_CONFIG

WORK=$(mktemp -d /tmp/hyperglass-bench.XXXXXX)
TRACKED=()

track() { TRACKED+=("$1"); }

stop_pid() {
    # Stops one process we started (and its group if it leads one): SIGTERM, up to 10 s, then SIGKILL.
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # Reap it if it is our child, so kill -0 stops seeing a zombie.
        if [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then wait "$pid" 2>/dev/null || true; break; fi
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${TRACKED[@]}"; do stop_pid "$pid"; done
    TRACKED=()
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS COMMAND...: polls every 50 ms; fails after SECONDS.
wait_until() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 ))
    shift
    until "$@" >/dev/null 2>&1; do
        if (( $(date +%s%N) > deadline )); then return 1; fi
        sleep 0.05
    done
}

children_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -c . || true; }
has_children() { (( $(children_of "$1") == $2 )); }

# proc_field PID FIELD: a number from /proc/PID/status (e.g. VmRSS in kB).
proc_field() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }

# ctxt PID: voluntary + nonvoluntary context switches summed over all the process's threads.
ctxt() {
    cat /proc/"$1"/task/*/status | awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ {n += $2} END {print n}'
}
ctxt_split() {
    cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches:/ {v += $2} /^nonvoluntary_ctxt_switches:/ {n += $2} END {print v, n}'
}

kib_to_mib() { awk -v k="$1" 'BEGIN {printf "%.2f", k / 1024}'; }

ready_count() {  # ready_count SOCKET: the supervisor's ready worker count, from status --json
    "$BIN/hyperglassctl" --socket "$1" status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["supervisor"]["ready"])' 2>/dev/null
}
pool_ready() { [[ $(ready_count "$1") == "$2" ]]; }
