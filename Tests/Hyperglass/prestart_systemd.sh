#!/bin/sh
# `prestart` under a real systemd 252 (the shared testbed, its own name and loopback-only network):
#   1. a 35 s prestart in a unit with TimeoutStartSec=5s: systemd must not kill it (EXTEND_TIMEOUT_USEC=
#      every 10 s), the start must succeed once it is done, and STATUS= must say what ran meanwhile;
#   2. the same start stopped with `systemctl stop` while the prestart runs: a clean stop, nothing left;
#   3. a failing prestart: `systemctl start` fails, the journal names the command and its exit status.
# Opt-in (about 50 s): sh Tests/Hyperglass/prestart_systemd.sh [BINDIR]   (default .build/debug)
# Needs root and ../shared/tools/systemd-testbed/testbed.sh (TESTBED= elsewhere); skips (77) without.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/.build/debug}
T=${TESTBED:-$ROOT/../shared/tools/systemd-testbed/testbed.sh}
export TESTBED_NAME=hg-real TESTBED_PRIVATE_NETWORK=1
[ "$(id -u)" = 0 ] && [ -x "$T" ] || { echo "prestart_systemd: skipped (needs root and $T)"; exit 77; }
failures=0
check() { if eval "$1"; then echo "prestart_systemd: ok   $2"; else echo "prestart_systemd: FAIL $2"; failures=$((failures + 1)); fi; }

"$T" up >/dev/null
trap '"$T" down >/dev/null 2>&1 || true' EXIT
"$T" copy-in "$BIN/hyperglass" /usr/local/bin/hyperglass-supervisor
"$T" copy-in "$BIN/hyperglass-worker" /usr/local/bin/hyperglass-worker
"$T" copy-in "$BIN/hyperglassctl" /usr/local/bin/hyperglassctl
"$T" install-unit "$ROOT/systemd/hyperglass.service" >/dev/null
"$T" exec mkdir -p /etc/systemd/system/hyperglass.service.d /etc/hyperglass-supervisor
printf '[Service]\nTimeoutStartSec=5s\n' > /tmp/hg-real-timeout.conf
"$T" copy-in /tmp/hg-real-timeout.conf /etc/systemd/system/hyperglass.service.d/timeout.conf
rm -f /tmp/hg-real-timeout.conf
conf() { printf '[supervisor]\nworkers = 2\nprestart = %s\n' "$1" > /tmp/hg-real.conf
         "$T" copy-in /tmp/hg-real.conf /etc/hyperglass-supervisor/supervisor.conf; rm -f /tmp/hg-real.conf; }
"$T" exec systemctl daemon-reload

# 1. A prestart seven times longer than TimeoutStartSec=.
conf "sh -c 'echo building; sleep 35; echo built'"
"$T" exec sh -c 'systemctl start --no-block hyperglass'
sleep 12
status=$("$T" exec systemctl show -p ActiveState,StatusText hyperglass | tr '\n' ' ')
check 'echo "$status" | grep -q "ActiveState=activating" && echo "$status" | grep -q "StatusText=prestart: running"' \
    "12 s in (TimeoutStartSec=5s) the unit is still starting and says what runs: $status"
start=$(date +%s)
until "$T" exec systemctl is-active -q hyperglass || [ $(( $(date +%s) - start )) -gt 60 ]; do sleep 1; done
status=$("$T" exec systemctl show -p ActiveState,StatusText,NRestarts hyperglass | tr '\n' ' ')
check 'echo "$status" | grep -q "ActiveState=active " && echo "$status" | grep -q "StatusText=2/2 workers ready"' "after the 35 s prestart the pool runs: $status"
journal=$("$T" exec journalctl -u hyperglass --no-pager -o cat)
check 'echo "$journal" | grep -q "^built$" && echo "$journal" | grep -q "prestart: .* succeeded in 35"' "the prestart's output and its result are in the journal"
check '! echo "$journal" | grep -q "start operation timed out"' "systemd did not time the start out"
"$T" exec systemctl stop hyperglass

# 2. systemctl stop while the prestart runs.
"$T" exec systemctl start --no-block hyperglass
sleep 3
t0=$(date +%s)
"$T" exec systemctl stop hyperglass
took=$(( $(date +%s) - t0 ))
status=$("$T" exec systemctl show -p ActiveState,Result hyperglass | tr '\n' ' ')
left=$("$T" exec sh -c 'pgrep -x sleep || true')
check '[ "$took" -le 5 ] && echo "$status" | grep -q "ActiveState=inactive" && echo "$status" | grep -q "Result=success" && [ -z "$left" ]' \
    "systemctl stop during the prestart: stopped in ${took} s, $status, left: '${left}'"

# 3. A prestart that fails.
conf "sh -c 'echo cannot-build >&2; exit 3'"
"$T" exec systemctl reset-failed hyperglass 2>/dev/null || true
if "$T" exec systemctl start hyperglass 2>/dev/null; then started=yes; else started=no; fi
status=$("$T" exec systemctl show -p ActiveState,Result,ExecMainStatus,StatusText hyperglass | tr '\n' ' ')
journal=$("$T" exec journalctl -u hyperglass --no-pager -o cat)
check '[ "$started" = no ] && echo "$status" | grep -q "ExecMainStatus=1"' "a failing prestart fails the start with status 1: $status"
check 'echo "$journal" | grep -q "cannot-build" && echo "$journal" | grep -q "exited with status 3; no worker was started"' "the journal has its output and names its exit status"

[ "$failures" = 0 ] && echo "prestart_systemd: all checks passed" || { echo "prestart_systemd: $failures check(s) failed"; exit 1; }
