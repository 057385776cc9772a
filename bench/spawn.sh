#!/usr/bin/env bash
# spawn.sh: how long the supervisor takes to start workers, and whether its loop stays free meanwhile.
#
# What:   (1) a scale-up FROM -> TO workers (default 4 -> 64) with `workers TO --wait` (readiness exec:
#         it answers once every new worker has exec'd), ROUNDS times, while a Python client pings the
#         control socket back to back: the scale-up's duration and the slowest ping during it.
#         (2) SIGKILL -> replacement exec'd, from the supervisor's side: strace -ttt (no -f: the workers
#         are not traced) on the supervisor, from the wait4() that reaps the killed worker to the
#         moment the supervisor knows the replacement exec'd (the read of its exec-report pipe returning
#         0 = end of file; the blocking read before issue 14). strace (--seccomp-bpf: stops only at the
#         traced calls) slows those, so these figures are upper bounds; KILLS times.
#         The spawn primitives alone (fork / clone(CLONE_VM|CLONE_VFORK) / fork + wait for exec) are in
#         bench/spawnprims.c, run at the end with the load average printed: on a busy machine the vfork
#         parent waits for its child to get a CPU.
# Usage:  bench/spawn.sh     (env: BIN, FROM=4, TO=64, ROUNDS=5, KILLS=10, PORT=18441)
source "$(dirname "$0")/lib.sh"

FROM=${FROM:-4}
TO=${TO:-64}
ROUNDS=${ROUNDS:-5}
KILLS=${KILLS:-10}
PORT=${PORT:-18441}
SOCK=$WORK/c.sock

"$BIN/hyperglass" start --workers "$FROM" --bind "127.0.0.1:$PORT" --control-socket "$SOCK" \
    --readiness exec >"$WORK/hyperglass.log" 2>&1 &
HPID=$!; track "$HPID"
if ! wait_until 30 pool_ready "$SOCK" "$FROM"; then
    echo "hyperglass did not get $FROM workers ready within 30 s" >&2; cat "$WORK/hyperglass.log" >&2; exit 1
fi

echo "# spawn: $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r), BIN=$BIN, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## scale-up $FROM -> $TO under a back-to-back control-socket ping"
cpu0=$(awk '{print $14 + $15}' /proc/"$HPID"/stat)
python3 "$BENCH_DIR/spawnwatch.py" "$SOCK" "$FROM" "$TO" "$ROUNDS" "$HPID"
cpu1=$(awk '{print $14 + $15}' /proc/"$HPID"/stat)
echo "supervisor CPU over the $ROUNDS rounds (up and back down): $(( (cpu1 - cpu0) * 1000 / $(getconf CLK_TCK) )) ms"

echo "## SIGKILL -> replacement exec'd, from the supervisor's side (strace -ttt, $KILLS kills)"
# A pool of KILLS workers, each killed once, oldest first: a slot killed twice within backoff_reset
# would wait for its backoff (1 s) instead of being replaced at once.
stop_pid "$HPID"
SOCK=$WORK/k.sock
"$BIN/hyperglass" start --workers "$KILLS" --bind "127.0.0.1:$((PORT + 1))" --control-socket "$SOCK" \
    --readiness exec >"$WORK/kills.log" 2>&1 &
HPID=$!; track "$HPID"
wait_until 30 pool_ready "$SOCK" "$KILLS" || { echo "no $KILLS workers ready" >&2; exit 1; }
originals=$(cat /proc/"$HPID"/task/*/children)
TRACE=$WORK/strace.txt
# --seccomp-bpf stops the supervisor only at the traced calls (it needs -f: children are followed too,
# but stopped only at those calls; their lines are dropped below).
strace -f --seccomp-bpf -ttt -qq -e trace=wait4,clone,clone3,fork,vfork,read -o "$TRACE" -p "$HPID" &
SPID=$!; track "$SPID"
sleep 1
for victim in $originals; do
    kill -KILL "$victim"
    wait_until 10 pool_ready "$SOCK" "$KILLS" || { echo "no replacement for $victim within 10 s" >&2; exit 1; }
    sleep 0.3
done
kill -INT "$SPID"; wait "$SPID" 2>/dev/null || true
# Pairs each wait4() that returned a worker's pid with the next clone/fork and the next read() = 0 after
# it (the exec report's end of file).
python3 - "$TRACE" "$HPID" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
ev = []
for l in lines:
    m = re.match(r"(\d+) +([\d.]+) (\w+)\((.*)\)\s+= (-?\d+)", l)
    if m and m.group(1) == sys.argv[2]: ev.append((float(m.group(2)), m.group(3), m.group(4), int(m.group(5))))
spans = []
for i, (t, name, args, ret) in enumerate(ev):
    if name != "wait4" or ret <= 0: continue
    fork = done = None
    for t2, n2, a2, r2 in ev[i + 1:]:
        if n2 == "wait4" and r2 > 0 and fork is None: break
        if fork is None and n2 in ("clone", "clone3", "fork", "vfork") and r2 > 0: fork = t2
        elif fork is not None and n2 == "read" and r2 == 0: done = t2; break
    if fork and done: spans.append(((fork - t) * 1000, (done - t) * 1000))
if not spans: sys.exit("no kill -> replacement found in the trace")
for f, d in spans: print(f"reaped -> forked {f:6.2f} ms, reaped -> exec confirmed {d:6.2f} ms")
d = sorted(x[1] for x in spans)
print(f"summary: SIGKILL reaped -> replacement exec'd: median {d[len(d) // 2]:.2f} ms, max {d[-1]:.2f} ms (n={len(d)}, under strace)")
PY

echo "## spawn primitives alone (C, 10 MB resident parent, 200 spawns of /bin/true each)"
cc -O2 -o "$WORK/spawnprims" "$BENCH_DIR/spawnprims.c"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$WORK/spawnprims" /bin/true
