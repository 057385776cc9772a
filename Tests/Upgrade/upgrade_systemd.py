#!/usr/bin/env python3
"""In-place upgrades under a booted systemd 252 (the testbed), driven as an operator would.

Installs the built binaries as /usr/local/bin/hyperglass-supervisor (build A) and a copy of it as
/usr/local/bin/hyperglass-supervisor-b (build B), starts hyperglass.service with the bundled worker,
then, under HTTP load (new connections) and with open WebSockets and a `hyperglassctl ping` loop, runs
N upgrades alternating A and B (`hyperglassctl upgrade --wait PATH`). Checks: MainPID unchanged,
NRestarts 0, every worker pid unchanged, 0 failed requests, 0 WebSockets closed, 0 failed pings, fd count
and RSS flat. Prints the slowest ping and the exec-to-READY times. Then a SIGKILL during a handover:
systemd restarts the service.

Uses debug or release binaries from --bin (default .build/debug); the testbed binds the Swift toolchain.
Skips (exit 0) when not root or without the testbed. TESTBED_NAME defaults to hyperglass-upgrade.
"""
import argparse, json, os, re, shlex, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Acceptance"))
import acceptance as a  # noqa: E402  (its testbed helpers: tb, guest, show, Background, Failure)

a.ENV = dict(os.environ, TESTBED_NAME=os.environ.get("TESTBED_NAME") or "hyperglass-upgrade", TESTBED_PRIVATE_NETWORK="1")
A = "/usr/local/bin/hyperglass-supervisor"
B = "/usr/local/bin/hyperglass-supervisor-b"
PING = "/usr/local/lib/hyperglass-acceptance/ping_loop.py"
PING_LOOP = r'''
import json, os, subprocess, sys, time
stop, slowest, failures, count, slow = sys.argv[1], 0.0, [], 0, []
end = time.monotonic() + 300
while not os.path.exists(stop) and time.monotonic() < end:
    started = time.monotonic()
    done = subprocess.run(["hyperglassctl", "ping"], capture_output=True, text=True)
    took = time.monotonic() - started
    count += 1
    slowest = max(slowest, took)
    if done.returncode != 0: failures.append(done.stderr.strip())
print(json.dumps({"count": count, "slowest_ms": round(slowest * 1000, 1), "failures": failures[:10]}), flush=True)
'''


def main_pid():
    return int(a.show("MainPID")["MainPID"])


def proc(pid):
    fds = int(a.guest(f"ls /proc/{pid}/fd | wc -l").stdout.strip())
    rss = int(re.search(r"VmRSS:\s+(\d+)", a.guest(f"cat /proc/{pid}/status").stdout).group(1))
    return fds, rss


def run(count):
    a.guest("printf '[supervisor]\\nworkers = 4\\nbind = 127.0.0.1:8001\\n\\n[worker]\\nmin_ready = 0s\\n' > /etc/hyperglass-supervisor/upgrade.conf")
    a.write_dropin("upgrade", "Environment=HYPERGLASS_CONFIG=/etc/hyperglass-supervisor/upgrade.conf")
    a.guest("systemctl restart hyperglass", timeout=90)
    pid = main_pid()
    workers = a.worker_pids(a.ctl_status())
    a.check(len(workers) == 4, f"not 4 workers: {workers}")
    fds0, rss0 = proc(pid)
    stop = "/run/hyperglass-upgrade-done"
    a.guest(f"rm -f {stop}")
    load = a.Background("until-file", a.URL + "/whoami", stop)
    sockets = [a.Background("ws", "127.0.0.1", "8001", "600") for _ in range(4)]
    for ws in sockets:
        opened = json.loads(ws.first_line(20))
        a.check(opened.get("event") == "open", f"a WebSocket did not open: {opened}")
    pinger = subprocess.Popen([a.TESTBED, "exec", "python3", PING, stop], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=a.ENV, start_new_session=True)
    took, replies, sizes = [], [], []
    try:
        time.sleep(1)
        for round in range(count):
            target = B if round % 2 == 0 else A
            started = time.monotonic()
            done = a.guest(f"hyperglassctl upgrade --wait {target}", timeout=60, check_rc=False)
            wall = time.monotonic() - started
            a.check(done.returncode == 0, f"upgrade {round + 1} to {target} failed: {done.stdout}{done.stderr}")
            replies.append(done.stdout.strip())
            match = re.search(r" in (\d+) ms", done.stdout)
            took.append(int(match.group(1)) if match else -1)
            a.check(main_pid() == pid, f"MainPID changed at upgrade {round + 1}: {pid} -> {main_pid()}")
            exe = a.guest(f"readlink /proc/{pid}/exe").stdout.strip()
            a.check(exe == target, f"after upgrade {round + 1} the supervisor runs {exe}, not {target}")
            sizes.append(proc(pid))
            time.sleep(0.3)
        time.sleep(1)
    finally:
        a.guest(f"touch {stop}")
    result = load.result(60)
    pings = json.loads(pinger.communicate(timeout=60)[0].strip().splitlines()[-1])
    props = a.show("MainPID", "NRestarts", "ActiveState", "SubState", "StatusText")
    after = a.worker_pids(a.ctl_status())
    still_open = []
    for ws in sockets:
        still_open.append(ws.process.poll() is None)
        ws.end()
    fds1, rss1 = proc(pid)
    journal = a.guest("journalctl -u hyperglass --no-pager -o cat").stdout
    a.check(props["NRestarts"] == "0" and props["ActiveState"] == "active" and props["SubState"] == "running", f"{props}")
    a.check(after == workers, f"worker pids changed: {workers} -> {after}")
    a.check(result["failed"] == 0 and result["ok"] > 100, f"requests failed during the upgrades: {result}")
    a.check(all(still_open), f"WebSockets closed during the upgrades: {still_open}")
    a.check(not pings["failures"], f"pings failed: {pings}")
    a.check(fds1 == fds0, f"fd count moved: {fds0} before, {fds1} after ({sizes})")
    a.check(journal.count("upgraded from") == count, f"the journal does not say 'upgraded from' {count} times")
    print(f"upgrade: {count} upgrades, MainPID {pid} kept, NRestarts {props['NRestarts']}, workers {after} kept; "
          f"{result['ok']} requests, {result['failed']} failed; 4 WebSockets open throughout; "
          f"pings {pings['count']}, slowest {pings['slowest_ms']} ms, {len(pings['failures'])} failed; "
          f"exec-to-READY ms {took}; fds {fds0} -> {fds1}; RSS {rss0} -> {rss1} KiB (per upgrade: {sizes})", flush=True)
    print(f"upgrade: last reply: {replies[-1]}", flush=True)


def sigkill_during_handover():
    """SIGKILL of the supervisor while it hands over: systemd restarts the service (Restart=on-failure)."""
    pid = main_pid()
    # The gap script kills its own process (the supervisor, mid-exec) instead of exec'ing the new binary.
    script = f'#!/bin/sh\nif [ "$1" = start ]; then kill -9 $$; fi\nexec {A} "$@"\n'
    a.guest(f"cat > /usr/local/bin/hyperglass-killed <<'EOF'\n{script}EOF\nchmod +x /usr/local/bin/hyperglass-killed")
    done = a.guest("hyperglassctl upgrade --wait /usr/local/bin/hyperglass-killed", timeout=60, check_rc=False)
    a.check(done.returncode != 0, f"the upgrade into a killed process reported success: {done.stdout}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        props = a.show("MainPID", "NRestarts", "ActiveState", "SubState")
        if props["ActiveState"] == "active" and props["SubState"] == "running" and int(props["MainPID"]) not in (0, pid):
            break
        time.sleep(0.3)
    a.check(props["NRestarts"] == "1" and int(props["MainPID"]) != pid, f"not restarted by systemd after the SIGKILL: {props}")
    workers = a.worker_pids(a.ctl_status())
    a.check(len(workers) == 4, f"after the restart: {workers}")
    print(f"upgrade: SIGKILL during the handover: systemd restarted the service ({props}); hyperglassctl said: {done.stderr.strip()}", flush=True)


def with_socket_unit():
    """With hyperglass.socket (the package's default): upgrades take the inherited listener along, and a
    SIGKILL during a handover refuses no connection (systemd holds the socket; the restart serves the backlog)."""
    a.guest("systemctl stop hyperglass", timeout=90)
    a.tb("install-unit", os.path.join(ROOT, "systemd", "hyperglass.socket"))
    a.guest("systemctl start hyperglass.socket && systemctl start hyperglass", timeout=90)
    journal = a.guest("journalctl -u hyperglass --no-pager -o cat -n 30").stdout
    a.check("(from systemd socket activation)" in journal, "the supervisor did not take its listener from the socket unit")
    pid, workers = main_pid(), a.worker_pids(a.ctl_status())
    stop = "/run/hyperglass-upgrade-socket-done"
    a.guest(f"rm -f {stop}")
    load = a.Background("until-file", a.URL + "/whoami", stop)
    try:
        time.sleep(0.5)
        for target in (B, A, B, A):
            done = a.guest(f"hyperglassctl upgrade --wait {target}", timeout=60, check_rc=False)
            a.check(done.returncode == 0 and main_pid() == pid, f"upgrade to {target} with the socket unit: {done.stdout}{done.stderr}")
        a.check(a.worker_pids(a.ctl_status()) == workers, "workers changed in the upgrades with the socket unit")
        script = f'#!/bin/sh\nif [ "$1" = start ]; then kill -9 $$; fi\nexec {A} "$@"\n'
        a.guest(f"cat > /usr/local/bin/hyperglass-killed <<'EOF'\n{script}EOF\nchmod +x /usr/local/bin/hyperglass-killed")
        restarts = int(a.show("NRestarts")["NRestarts"])
        a.guest("hyperglassctl upgrade --wait /usr/local/bin/hyperglass-killed", timeout=60, check_rc=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            props = a.show("MainPID", "NRestarts", "ActiveState", "SubState")
            if props["SubState"] == "running" and int(props["NRestarts"]) == restarts + 1 and a.guest("hyperglassctl ping", check_rc=False).returncode == 0:
                break
            time.sleep(0.2)
        a.check(int(props["NRestarts"]) == restarts + 1 and int(props["MainPID"]) != pid, f"not restarted after the SIGKILL: {props}")
        time.sleep(1)
    finally:
        a.guest(f"touch {stop}")
    result = load.result(60)
    refused = [e for e in result["errors"] if "Refused" in e]
    a.check(not refused, f"connections refused with the socket unit: {result}")
    print(f"upgrade: with hyperglass.socket: 4 upgrades (MainPID {pid} kept) and a SIGKILL during a handover "
          f"(restarted by systemd): {result['ok']} requests, {result['failed']} failed, none refused {result['errors']}", flush=True)
    a.guest("systemctl stop hyperglass hyperglass.socket && rm -f /etc/systemd/system/hyperglass.socket && systemctl daemon-reload", timeout=90)


def postinst_upgrades_in_place(bindir):
    """The package's postinst on upgrade: in place when it can (same MainPID, same workers), else a restart,
    and it says which. The binaries are installed as the package lays them out (/usr/bin), each new
    version written as dpkg does (a new inode renamed over the old one)."""
    text = open(os.path.join(ROOT, "packaging", "debian", "postinst.in")).read()
    for key, value in {"@PACKAGE@": "hyperglass-supervisor", "@SERVICE@": "hyperglass.service", "@SOCKET@": "hyperglass.socket",
                       "@BINDIR@": "/usr/bin", "@DOCDIR@": "/usr/share/doc/hyperglass-supervisor", "@MOVED_CONFFILES@": "",
                       "@OLDCONFDIR@": "/etc/hyperglass", "@MOVED_BEFORE@": "0.0.1", "@CONFDIR@": "/etc/hyperglass-supervisor"}.items():
        text = text.replace(key, value)
    a.guest(f"cat > /tmp/postinst <<'EOF'\n{text}EOF\nchmod +x /tmp/postinst")
    a.tb("copy-in", os.path.join(bindir, "hyperglass"), "/usr/bin/hyperglass-supervisor")
    a.tb("copy-in", os.path.join(bindir, "hyperglassctl"), "/usr/bin/hyperglassctl")
    a.tb("copy-in", os.path.join(bindir, "hyperglass-worker"), "/usr/bin/hyperglass-worker")
    unit = open(os.path.join(ROOT, "systemd", "hyperglass.service")).read().replace("/usr/local/bin/", "/usr/bin/")
    a.guest(f"cat > /etc/systemd/system/hyperglass.service <<'EOF'\n{unit}EOF\nsystemctl daemon-reload && systemctl restart hyperglass", timeout=90)
    pid, workers = main_pid(), a.worker_pids(a.ctl_status())
    a.check(len(workers) == 4, f"not 4 workers: {workers}")

    def new_package_binary():
        a.guest("cp /usr/bin/hyperglass-supervisor /usr/bin/.hyperglass-supervisor.dpkg-new && "
                "mv /usr/bin/.hyperglass-supervisor.dpkg-new /usr/bin/hyperglass-supervisor")

    new_package_binary()
    done = a.guest("/tmp/postinst configure 0.1.0~old", timeout=120)
    exe = a.guest(f"readlink /proc/{main_pid()}/exe").stdout.strip()
    a.check("upgraded in place" in done.stdout, f"postinst did not upgrade in place: {done.stdout}{done.stderr}")
    a.check(main_pid() == pid and a.worker_pids(a.ctl_status()) == workers, "MainPID or workers changed in the in-place upgrade")
    a.check(exe == "/usr/bin/hyperglass-supervisor", f"the supervisor runs {exe!r}, not the new binary")
    in_place = done.stdout.strip()

    # A configuration changed on disk cannot be taken over as it is: the postinst restarts instead, and says so.
    a.guest("sed -i 's/workers = 4/workers = 3/' /etc/hyperglass-supervisor/upgrade.conf")
    new_package_binary()
    done = a.guest("/tmp/postinst configure 0.1.0~old", timeout=120)
    a.check("cannot upgrade in place" in done.stdout and "configuration on disk differs" in done.stdout and "restarting it" in done.stdout,
            f"postinst did not say why it restarted: {done.stdout}{done.stderr}")
    a.check(main_pid() != pid and len(a.worker_pids(a.ctl_status())) == 3, "the service was not restarted onto the new configuration")
    print(f"upgrade: postinst: '{in_place}'; then: '{done.stdout.strip()}'", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug"))
    parser.add_argument("--count", type=int, default=20)
    options = parser.parse_args()
    if os.geteuid() != 0 or not os.access(a.TESTBED, os.X_OK):
        print("upgrade: SKIPPED: needs root and the systemd testbed", flush=True)
        return 0
    try:
        booted = a.tb("up", timeout=600, check_rc=False)
        if booted.returncode != 0:
            print(f"upgrade: SKIPPED: testbed.sh up failed: {booted.stderr[-1000:]}", flush=True)
            return 0
        a.tb("copy-in", os.path.join(options.bin, "hyperglass"), A)
        a.tb("copy-in", os.path.join(options.bin, "hyperglass"), B)
        a.tb("copy-in", os.path.join(options.bin, "hyperglassctl"), "/usr/local/bin/hyperglassctl")
        a.tb("copy-in", os.path.join(options.bin, "hyperglass-worker"), "/usr/local/bin/hyperglass-worker")
        a.tb("copy-in", os.path.join(ROOT, "Tests", "Acceptance", "guest_client.py"), a.CLIENT)
        a.guest(f"mkdir -p /etc/hyperglass-supervisor && cat > {PING} <<'EOF'\n{PING_LOOP}\nEOF")
        a.tb("install-unit", os.path.join(ROOT, "systemd", "hyperglass.service"))
        if options.count:
            run(options.count)
        sigkill_during_handover()
        with_socket_unit()
        postinst_upgrades_in_place(options.bin)
        print("upgrade: PASS", flush=True)
        return 0
    except a.Failure as failure:
        print(f"upgrade: FAIL: {failure}", flush=True)
        print(a.guest("journalctl -u hyperglass -n 40 --no-pager", check_rc=False).stdout, flush=True)
        return 1
    finally:
        a.tb("down", timeout=180, check_rc=False)


if __name__ == "__main__":
    sys.exit(main())
