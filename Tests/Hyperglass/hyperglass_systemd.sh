#!/bin/sh
# hyperglass 1.0.4 under the shipped unit in a real systemd 252 (the shared testbed, name hg-real):
# the hardened systemd/hyperglass.service, config/hyperglass.conf, Debian's redis-server.service, and:
#   1. `systemctl start` returns once the pool serves;
#   2. `systemctl restart redis-server` under load, with Wants=/After= (the documented drop-in): the pool
#      stays (same MainPID), no request fails;
#   3. the same with Requires=/After= (hyperglass's guide): systemd restarts hyperglass too; measured;
#   4. `systemctl reload` under load: succeeds, no request fails;
#   5. `systemctl reload` while redis-server is stopped: fails, the old workers serve, no request fails.
# The guest shares the host's network (it needs apt for redis-server), so it uses ports 18099 (hyperglass)
# and 16399 (Redis). Opt-in, about 90 s: sh Tests/Hyperglass/hyperglass_systemd.sh [VENV] [BINDIR]
# (defaults .build-hyperglass/venv and .build/release: `make release` first). Root only; skips (77) without
# the testbed (TESTBED=path/to/testbed.sh).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=$(cd "${1:-$ROOT/.build-hyperglass/venv}" && pwd)
BIN=${2:-$ROOT/.build/release}
T=${TESTBED:-$ROOT/../shared/tools/systemd-testbed/testbed.sh}
PORT=18099
# The venv is used in place (its scripts name its path), read-only.
export TESTBED_NAME=hg-real TESTBED_BIND_RO="$VENV"
[ "$(id -u)" = 0 ] && [ -x "$T" ] || { echo "hyperglass_systemd: skipped (needs root and $T)"; exit 77; }
[ -x "$VENV/bin/uvicorn" ] && [ -x "$BIN/hyperglass" ] || { echo "hyperglass_systemd: needs $VENV (scripts/hyperglass-venv.sh) and $BIN (make release)" >&2; exit 1; }
work=$(mktemp -d)
failures=0
check() { if eval "$1"; then echo "hyperglass_systemd: ok   $2"; else echo "hyperglass_systemd: FAIL $2"; failures=$((failures + 1)); fi; }
g() { "$T" exec "$@"; }
show() { g systemctl show -p "$1" hyperglass | tr '\n' ' '; }
load() { python3 "$ROOT/Tests/Hyperglass/load_info.py" "$PORT" "$1" > "$work/$2" & }

"$T" up >/dev/null
trap '"$T" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
g sh -c 'apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server libyaml-0-2 >/dev/null 2>&1'
g sh -c "sed -i 's/^port 6379/port 16399/' /etc/redis/redis.conf && systemctl restart redis-server"
for p in hyperglass:hyperglass-supervisor hyperglass-worker:hyperglass-worker hyperglassctl:hyperglassctl; do
    "$T" copy-in "$BIN/${p%%:*}" "/usr/local/bin/${p##*:}" >/dev/null
done
# /etc/hyperglass: the example configuration (docs/hyperglass.md), Redis on the guest's port.
mkdir -p "$work/hg/static/custom" "$work/sup"
sed 's/port: 6379/port: 16399/' "$ROOT/Tests/Hyperglass/appconfig/hyperglass.yaml" > "$work/hg/hyperglass.yaml"
cp "$ROOT/Tests/Hyperglass/appconfig/devices.yaml" "$work/hg/"
sed -e "s|/opt/hyperglass/venv|$VENV|" -e "s|^bind = 127.0.0.1:8001|bind = 127.0.0.1:$PORT|" -e 's|^workers = auto|workers = 4|' \
    "$ROOT/config/hyperglass.conf" > "$work/sup/supervisor.conf"
cp -r "$ROOT/config/examples" "$work/sup/examples"
"$T" copy-in "$work/hg" /etc/hyperglass >/dev/null
"$T" copy-in "$work/sup" /etc/hyperglass-supervisor >/dev/null
"$T" install-unit "$ROOT/systemd/hyperglass.service" >/dev/null
g mkdir -p /etc/systemd/system/hyperglass.service.d
dropin() { printf '[Unit]\n%s=redis-server.service\nAfter=redis-server.service\n' "$1" > "$work/redis.conf"
           "$T" copy-in "$work/redis.conf" /etc/systemd/system/hyperglass.service.d/redis.conf >/dev/null; g systemctl daemon-reload; }

# 1. Start.
dropin Wants
t0=$(date +%s.%N)
g systemctl start hyperglass
took=$(echo "$(date +%s.%N) - $t0" | bc)
info=$(curl -s -m 5 "http://127.0.0.1:$PORT/api/info" || true)
check 'echo "$info" | grep -q "hyperglass 1.0.4"' "systemctl start returned after ${took} s and hyperglass answers: $info"
check 'show StatusText | grep -q "4/4 workers ready"' "the unit says so: $(show StatusText)"

# 2. Redis restarted, Wants=.
pid=$(show MainPID)
load 8 wants.out; sleep 2
g systemctl restart redis-server; wait
check '[ "$(show MainPID)" = "$pid" ] && grep -q " 0 failed" "$work/wants.out"' "Wants=: restart of redis-server leaves the pool ($pid → $(show MainPID)): $(cat "$work/wants.out")"

# 3. Redis restarted, Requires=.
dropin Requires
pid=$(show MainPID)
load 16 requires.out; sleep 2
t0=$(date +%s.%N); g systemctl restart redis-server; redis=$(echo "$(date +%s.%N) - $t0" | bc)
wait
echo "hyperglass_systemd: note Requires=: systemctl restart redis-server took ${redis} s; MainPID $pid → $(show MainPID); load: $(cat "$work/requires.out")"
g sh -c 'journalctl -u hyperglass --no-pager -o short-monotonic | grep -E "systemd\[1\]: (Stopping|Stopped|Starting|Started) hyperglass" | tail -4'
check '[ "$(show MainPID)" != "$pid" ]' "Requires=: systemd restarted hyperglass with redis-server (as documented)"
dropin Wants

# 4. Reload under load.
load 25 reload.out; sleep 2
t0=$(date +%s.%N); if g systemctl reload hyperglass; then rc=0; else rc=$?; fi; took=$(echo "$(date +%s.%N) - $t0" | bc)
wait
check '[ "$rc" = 0 ] && grep -q " 0 failed" "$work/reload.out"' "systemctl reload: exit $rc after ${took} s; $(cat "$work/reload.out")"

# 5. Reload with Redis stopped.
g systemctl stop redis-server
load 12 down.out; sleep 1
if g systemctl reload hyperglass 2>/dev/null; then rc=0; else rc=$?; fi
wait
check '[ "$rc" != 0 ] && grep -q " 0 failed" "$work/down.out"' "systemctl reload with Redis stopped fails (exit $rc), the old workers serve: $(cat "$work/down.out")"
check 'show StatusText | grep -q "kept the previous version"' "$(show StatusText)"
g systemctl start redis-server

[ "$failures" = 0 ] && echo "hyperglass_systemd: all checks passed" || { echo "hyperglass_systemd: $failures check(s) failed"; exit 1; }
