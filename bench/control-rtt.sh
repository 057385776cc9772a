#!/usr/bin/env bash
# control-rtt.sh: wall time of whole hyperglassctl commands against a running supervisor.
#
# What:   the time a shell waits for `hyperglassctl status`, `status --json` and `ping`
#         (fork + exec of the static binary + connect to the control socket + request + reply
#         + exit), median / p95 / max over RUNS runs each (default 200), with WORKERS (default 16)
#         bundled workers in the pool (status reads each worker's RSS from /proc).
#         `/bin/true` is timed the same way as the floor of fork+exec+wait from bash, and
#         `hyperglassctl --help` as the client's own start-up (no socket). To split client start-up
#         from the supervisor's share, a Python client also times connect + request + reply alone
#         on the socket (no process start), RUNS times per request.
# How:    bash's $EPOCHREALTIME just before and just after each command, output to /dev/null,
#         after 10 warm-up runs; the supervisor is otherwise idle.
#         The machine's load average is printed: on a 2-CPU machine shared with builds, expect noise.
# Target: `hyperglassctl status` <= 5 ms for the whole command (median; p95 reported too).
# Usage:  bench/control-rtt.sh          (env: BIN, RUNS=200, WORKERS=16, PORT=18421)
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-200}
WORKERS=${WORKERS:-16}
PORT=${PORT:-18421}
SOCK=$WORK/c.sock
CTL=$BIN/hyperglassctl

"$BIN/hyperglass" start --workers "$WORKERS" --bind "127.0.0.1:$PORT" --control-socket "$SOCK" \
    --readiness notify >"$WORK/hyperglass.log" 2>&1 &
HPID=$!; track "$HPID"
if ! wait_until 30 pool_ready "$SOCK" "$WORKERS"; then
    echo "hyperglass did not get $WORKERS workers ready within 30 s" >&2; cat "$WORK/hyperglass.log" >&2; exit 1
fi

# time_runs LABEL COMMAND...: prints "LABEL median p95 max (ms)"; fails if any run fails.
time_runs() {
    local label=$1; shift
    local i t0 t1 out=$WORK/times
    : >"$out"
    for ((i = 0; i < 10; i++)); do "$@" >/dev/null 2>&1 || { echo "$label failed" >&2; return 1; }; done
    for ((i = 0; i < RUNS; i++)); do
        t0=$EPOCHREALTIME
        "$@" >/dev/null 2>&1 || { echo "$label failed on run $i" >&2; return 1; }
        t1=$EPOCHREALTIME
        echo "$t0 $t1" >>"$out"
    done
    awk '{print ($2 - $1) * 1000}' "$out" | sort -n | awk -v label="$label" '
        {a[NR] = $1}
        END {
            p95 = a[int(NR * 0.95 + 0.999999)]
            printf "%-36s min %5.2f ms   median %6.2f ms   p95 %6.2f ms   max %6.2f ms   (n=%d)\n", label, a[1], a[int((NR + 1) / 2)], p95, a[NR], NR
        }'
}

echo "# control-rtt: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), $WORKERS workers, $RUNS runs each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# from bash (fork + exec + wait, timed with \$EPOCHREALTIME):"
time_runs "/bin/true (fork+exec floor)" /bin/true
time_runs "hyperglassctl --help (start-up only)" "$CTL" --help
time_runs "hyperglassctl ping" "$CTL" --socket "$SOCK" ping
time_runs "hyperglassctl status" "$CTL" --socket "$SOCK" status
time_runs "hyperglassctl status --json" "$CTL" --socket "$SOCK" status --json

# The same commands started from Python (subprocess: vfork + exec, no shell fork), with the CPU
# time and minor page faults the command itself costs; then the supervisor's share alone:
# connect + one request line + its reply line, in one process.
python3 - "$SOCK" "$RUNS" "$CTL" <<'PY'
import resource, socket, subprocess, sys, time
path, runs, ctl = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def stats(times):
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95 + 0.999999) - 1)]
    return f"min {times[0]:5.2f} ms   median {times[len(times)//2]:6.2f} ms   p95 {p95:6.2f} ms   max {times[-1]:6.2f} ms   (n={len(times)})"

for label, argv in (("/bin/true", ["/bin/true"]), ("hyperglassctl --help", [ctl, "--help"]),
                    ("hyperglassctl ping", [ctl, "--socket", path, "ping"]),
                    ("hyperglassctl status", [ctl, "--socket", path, "status"])):
    times = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for i in range(runs + 10):
        t0 = time.perf_counter()
        if subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            raise SystemExit(f"{label} failed")
        if i >= 10:
            times.append((time.perf_counter() - t0) * 1000)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000 / (runs + 10)
    faults = (after.ru_minflt - before.ru_minflt) / (runs + 10)
    print(f"{'spawned: ' + label:<36} {stats(times)}   cpu {cpu:.2f} ms, {faults:.0f} minor faults")
for cmd in ("ping", "status"):
    times = []
    for i in range(runs + 10):
        t0 = time.perf_counter()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(('{"v":1,"cmd":"%s"}\n' % cmd).encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise SystemExit(f"{cmd}: connection closed before the reply")
                reply += chunk
        if b'"ok":true' not in reply:
            raise SystemExit(f"{cmd}: {reply[:200]!r}")
        if i >= 10:
            times.append((time.perf_counter() - t0) * 1000)
    print(f"{'socket only: ' + cmd:<36} {stats(times)}")
PY
