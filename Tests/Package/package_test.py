#!/usr/bin/env python3
"""The Debian package under a booted systemd 252 (Debian 12's), the way an administrator meets it.

Builds two packages of the same tree with `make deb` (versions ~pkgtest1 and ~pkgtest2: an upgrade to a
newer build of itself), boots ../shared/tools/systemd-testbed/testbed.sh as TESTBED_NAME=hg-pkg (never
the default name, which the acceptance suite uses), its own loopback network, no Swift toolchain
inside, and then, with dpkg and systemctl only:

  1. install: the service and its socket unit are enabled and active when `dpkg -i` returns, and the
     pool already serves (`systemctl start` inside postinst returned only once ready);
  2. upgrade under HTTP load (a client on fresh connections, back to back): in place (postinst says
     "upgraded in place"; the same MainPID and worker pids, now running the new binary), 0 failed
     requests, the new version installed, the administrator's change to the conffile kept;
  3. the same package upgrade with the socket unit disabled, measured and reported, not asserted
     (in place it refuses nothing; a restart, when in place cannot be done, refuses connections);
  4. purge: no file, unit, enablement symlink, dpkg state or process of the package is left, nor
     the byte-code cache a Python worker writes beside the example apps;
  5. upgrade from the old layout (configuration in /etc/hyperglass, packages up to DEB_MOVED_BEFORE):
     the administrator's changed supervisor.conf is moved to /etc/hyperglass-supervisor and used,
     /etc/hyperglass is gone, and a purge afterwards again leaves nothing.

Skips (exit 0, saying why) when not root or the testbed is absent. Always takes the testbed down.
  python3 Tests/Package/package_test.py [--scratch-path .build] [--keep-up]
"""
import argparse, json, os, shlex, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTBED = os.environ.get("TESTBED") or os.path.join(ROOT, "..", "shared", "tools", "systemd-testbed", "testbed.sh")
# TESTBED_NAME from the environment lets parallel runs keep apart; the default is the suite's own.
ENV = dict(os.environ, TESTBED_NAME=os.environ.get("TESTBED_NAME") or "hg-pkg", TESTBED_PRIVATE_NETWORK="1", TESTBED_BIND_RO="")
CLIENT = "/tmp/hg-pkg-client.py"
URL = "http://127.0.0.1:8001"
PACKAGE = "hyperglass-supervisor"  # set from the Makefile's DEB_PACKAGE by main


class Failure(Exception):
    pass


def log(text):
    print(f"package: {text}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(argv, timeout=120, check_rc=True, **kw):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV, **kw)
    if check_rc and result.returncode != 0:
        raise Failure(f"{shlex.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def tb(*args, timeout=120, check_rc=True):
    return run([TESTBED, *args], timeout=timeout, check_rc=check_rc)


def guest(command, timeout=60, check_rc=True):
    return tb("exec", "sh", "-c", command, timeout=timeout, check_rc=check_rc)


def units():
    """The package's unit names, from its own file list (so a rename of the units needs no edit here)."""
    files = guest(f"dpkg -L {PACKAGE}").stdout.split()
    names = [os.path.basename(f) for f in files if "/systemd/system/" in f and f.endswith((".service", ".socket"))]
    return next(n for n in names if n.endswith(".service")), next(n for n in names if n.endswith(".socket"))


def show(unit, *properties):
    out = guest(f"systemctl show -p {','.join(properties)} {unit}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class Load:
    """HTTP GETs on fresh connections, back to back, inside the guest, until a stop file appears."""

    def __init__(self, stop_file):
        self.stop_file = stop_file
        guest(f"rm -f {stop_file}")
        self.process = subprocess.Popen([TESTBED, "exec", "python3", CLIENT, "until-file", URL + "/whoami", stop_file],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                        start_new_session=True)

    def result(self, seconds=60):
        guest(f"touch {self.stop_file}")
        try:
            out, err = self.process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.end()
            raise Failure("the load client did not finish in time")
        lines = out.strip().splitlines()
        check(lines, f"the load client printed nothing: {err}")
        return json.loads(lines[-1])

    def end(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def upgrade_under_load(deb, label):
    """dpkg -i under load; the load's counts, the time taken, what dpkg printed, and whether the supervisor
    (MainPID) and its workers stayed the same processes, i.e. the postinst upgraded in place."""
    service, _ = units()
    before = show(service, "MainPID")["MainPID"]
    workers_before = [w.get("pid") for w in json.loads(guest("hyperglassctl status --json").stdout)["workers"]]
    load = Load("/tmp/hg-pkg-load-done")
    try:
        time.sleep(1.5)  # the client is running against the old supervisor
        started = time.monotonic()
        said = guest(f"dpkg -i /tmp/{os.path.basename(deb)}", timeout=180).stdout
        took = time.monotonic() - started
        time.sleep(1)  # and keeps running against the new one
        result = load.result()
    finally:
        load.end()
    after = show(service, "MainPID", "ActiveState", "SubState")
    check(after["ActiveState"] == "active" and after["SubState"] == "running", f"{label}: service not running after dpkg -i: {after}")
    workers_after = [w.get("pid") for w in json.loads(guest("hyperglassctl status --json").stdout)["workers"]]
    in_place = after["MainPID"] == before and workers_after == workers_before
    return result, took, said, in_place


def test_install(deb):
    guest(f"dpkg -i /tmp/{os.path.basename(deb)}", timeout=180)
    service, socket = units()
    for unit in (service, socket):
        check(guest(f"systemctl is-enabled {unit}", check_rc=False).stdout.strip() == "enabled", f"{unit} is not enabled")
        check(guest(f"systemctl is-active {unit}", check_rc=False).stdout.strip() == "active", f"{unit} is not active")
    # No polling: dpkg returned, so postinst's `systemctl start` returned, so the pool is ready.
    health = guest("hyperglassctl health --ready-share 1", check_rc=False)
    check(health.returncode == 0, f"not ready when dpkg -i returned: {health.stdout}{health.stderr}")
    got = json.loads(guest(f"python3 {CLIENT} get {URL}/").stdout.strip().splitlines()[-1])
    check(got.get("status") == 200, f"GET / right after install: {got}")
    journal = guest(f"journalctl -u {service} --no-pager -o cat").stdout
    check("from systemd socket activation" in journal, "the supervisor did not take its listener from the socket unit")
    conf = guest(f"dpkg-query -W -f='${{Conffiles}}' {PACKAGE}").stdout
    check("supervisor.conf" in conf, f"supervisor.conf is not a conffile: {conf!r}")
    return f"{service} and {socket} enabled and active; {health.stdout.strip()}"


CONF_MARK = "# changed by the administrator (package test)"


def test_upgrade_under_load(deb):
    conf = guest(f"dpkg-query -W -f='${{Conffiles}}' {PACKAGE} | awk '/supervisor.conf/ {{print $1}}'").stdout.strip()
    guest(f"echo '{CONF_MARK}' >> {conf}")
    result, took, said, in_place = upgrade_under_load(deb, "upgrade")
    check("upgraded in place" in said and in_place, f"the postinst did not upgrade in place (same MainPID and workers): {said}")
    version = guest(f"dpkg-query -W -f='${{Version}}' {PACKAGE}").stdout.strip()
    check("pkgtest2" in version, f"installed version after the upgrade: {version}")
    check(CONF_MARK in guest(f"cat {conf}").stdout, f"the administrator's change to {conf} was lost in the upgrade")
    # The running supervisor is the file now on disk, not the replaced one ("(deleted)").
    service, _ = units()
    exe = guest(f"readlink /proc/{show(service, 'MainPID')['MainPID']}/exe").stdout.strip()
    check(exe.startswith("/usr/bin/") and "deleted" not in exe, f"the supervisor runs {exe!r}, not the upgraded binary")
    check(result["ok"] > 0 and result["failed"] == 0, f"requests failed during the upgrade: {result}")
    line = next((l for l in said.splitlines() if "upgraded in place" in l), "")
    return (f"dpkg -i (upgrade) took {took:.2f}s, in place ({line.strip()}); {result['ok']} requests, 0 failed, "
            f"served by {len(result['pids'])} worker pids; local change to {conf} kept; supervisor runs {exe}")


def measure_upgrade_without_socket(deb):
    """Not a requirement, a measurement: why the package keeps the socket unit on."""
    _, socket = units()
    guest(f"systemctl disable --now {socket}")
    try:
        result, took, said, in_place = upgrade_under_load(deb, "upgrade without the socket unit")
    finally:
        guest(f"systemctl enable --now {socket}", check_rc=False)
    how = "in place" if in_place else "by a restart"
    return f"socket unit disabled: dpkg -i took {took:.2f}s, {how}; {result['ok']} requests, {result['failed']} failed {result['errors'][:2]}"


def package_paths(*debs):
    """Every path the packages hold, from the .deb files themselves."""
    paths = set()
    for deb in debs:
        for line in run(["dpkg-deb", "-c", deb]).stdout.splitlines():
            path = line.split(None, 5)[-1].split(" -> ")[0].lstrip(".").rstrip("/")
            if path:
                paths.add(path)
    return sorted(paths)


def existing(paths):
    """The paths that exist in the guest (one shell call)."""
    script = "for p in " + " ".join(shlex.quote(p) for p in paths) + '; do [ -e "$p" ] && echo "$p"; done; true'
    return set(guest(script).stdout.split())


def leftovers():
    """Everything on the guest's disk that names the package or its programs, plus live processes."""
    found = guest("find / -xdev \\( -path /proc -o -path /sys -o -path /tmp \\) -prune -o -name '*hyperglass*' -print",
                  check_rc=False).stdout.split()
    found += guest("ls /run | grep -i hyperglass", check_rc=False).stdout.split()
    found += [l for l in guest("ps -eo pid=,args=").stdout.splitlines() if "hyperglass" in l and "ps -eo" not in l]
    return found


def test_purge(baseline, paths, existed_before):
    service, socket = units()
    # What a Python worker leaves when it imports the example apps: not the package's file, but its doing.
    examples = guest(f"dpkg -L {PACKAGE} | grep '^/etc/.*/examples$'").stdout.strip()
    guest(f"mkdir -p {examples}/__pycache__ && touch {examples}/__pycache__/asgi_app.cpython-311.pyc")
    guest(f"dpkg --purge {PACKAGE}", timeout=120)
    left = sorted(set(leftovers()) - set(baseline))
    check(not left, f"left behind after purge: {left}")
    # Whatever the programs and directories are called: every path of the package that did not
    # exist before the installation is gone.
    left = sorted(existing(paths) - existed_before)
    check(not left, f"paths of the package left behind after purge: {left}")
    state = guest(f"systemctl show -p LoadState {service} {socket}").stdout.split()
    check(state == ["LoadState=not-found"] * 2, f"units still known to systemd after purge: {state}")
    return "nothing left (files, units, enablement state, dpkg state, processes)"


OLD_LAYOUT_VERSION = "0.1.0~oldlayout-1"  # below the test builds, and below DEB_MOVED_BEFORE as every old-layout build
OLD_CONFDIR, NEW_CONFDIR = "/etc/hyperglass", "/etc/hyperglass-supervisor"


def old_layout_package(deb, out):
    """A package laid out as the ones before the move: the same files and scripts, but the
    configuration (conffiles, scripts' paths) in /etc/hyperglass, at a version from before the move,
    and without the move itself (those packages had no preinst)."""
    tree = tempfile.mkdtemp(prefix="hg-pkg-old-", dir=out)
    run(["dpkg-deb", "-R", deb, tree])
    os.rename(tree + NEW_CONFDIR, tree + OLD_CONFDIR)
    os.remove(os.path.join(tree, "DEBIAN", "preinst"))
    for name in ("conffiles", "md5sums", "postinst", "postrm", "control"):
        path = os.path.join(tree, "DEBIAN", name)
        text = open(path).read().replace(NEW_CONFDIR.lstrip("/"), OLD_CONFDIR.lstrip("/"))
        if name in ("postinst", "postrm"):
            text = "\n".join("    :" if "dpkg-maintscript-helper" in l else l for l in text.splitlines()) + "\n"
        if name == "control":
            text = "\n".join(f"Version: {OLD_LAYOUT_VERSION}" if l.startswith("Version:") else l for l in text.splitlines()) + "\n"
        open(path, "w").write(text)
    built = os.path.join(out, f"{PACKAGE}_{OLD_LAYOUT_VERSION}_old-layout.deb")
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", tree, built])
    shutil.rmtree(tree)
    return built


def test_upgrade_from_old_layout(old_layout, deb, baseline, paths, existed_before):
    guest(f"dpkg -i /tmp/{os.path.basename(old_layout)}", timeout=180)
    conf = guest(f"dpkg-query -W -f='${{Conffiles}}' {PACKAGE}").stdout
    check(f"{OLD_CONFDIR}/supervisor.conf" in conf, f"the old-layout package's conffiles: {conf!r}")
    # A change the running service must see after the upgrade: a distinct worker count.
    guest(f"sed -i 's/^#workers = auto$/{CONF_MARK}\\nworkers = 3/' {OLD_CONFDIR}/supervisor.conf")
    check(CONF_MARK in guest(f"cat {OLD_CONFDIR}/supervisor.conf").stdout, "could not change the old supervisor.conf")
    guest(f"dpkg -i /tmp/{os.path.basename(deb)}", timeout=180)
    service, _ = units()
    state = guest(f"systemctl is-active {service}", check_rc=False).stdout.strip()
    check(state == "active", f"{service} is {state} after the upgrade:\n" + guest(f"journalctl -u {service} --no-pager -o cat | tail -n 15").stdout)
    moved = guest(f"cat {NEW_CONFDIR}/supervisor.conf").stdout
    check(CONF_MARK in moved, f"the administrator's change did not reach {NEW_CONFDIR}/supervisor.conf")
    check(guest(f"test -e {OLD_CONFDIR}", check_rc=False).returncode != 0,
          f"{OLD_CONFDIR} left behind: {guest(f'find {OLD_CONFDIR}', check_rc=False).stdout.split()}")
    conf = guest(f"dpkg-query -W -f='${{Conffiles}}' {PACKAGE}").stdout
    # dpkg keeps a moved conffile listed as "obsolete" until the purge; nothing of the old path is live.
    live = [l for l in conf.splitlines() if l.strip().startswith(OLD_CONFDIR + "/") and not l.endswith(" obsolete")]
    check(not live, f"old conffiles still registered as live: {live}")
    status = json.loads(guest("hyperglassctl status --json").stdout)
    check(status["supervisor"]["desired"] == 3, f"the upgraded service does not run the moved configuration: {status['supervisor']}")
    kept = guest(f"ls {NEW_CONFDIR}").stdout.split()
    note = test_purge(baseline, paths, existed_before)
    return (f"changed {OLD_CONFDIR}/supervisor.conf moved to {NEW_CONFDIR} and used (3 workers); "
            f"{OLD_CONFDIR} removed; {NEW_CONFDIR}: {kept}; purge after: {note}")


def build(version, out):
    run(["make", "--no-print-directory", "-s", "deb", f"DEB_VERSION={version}", f"DEB_OUT={out}", f"SCRATCH={SCRATCH}"],
        timeout=1800, cwd=ROOT)
    debs = [os.path.join(out, f) for f in os.listdir(out) if version in f and f.endswith(".deb")]
    check(len(debs) == 1, f"make deb DEB_VERSION={version} made {debs}")
    return debs[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch-path", default=".build")
    parser.add_argument("--keep-up", action="store_true", help="leave the testbed running (debugging)")
    options = parser.parse_args()
    global SCRATCH, PACKAGE
    SCRATCH = options.scratch_path if os.path.isabs(options.scratch_path) else os.path.join(ROOT, options.scratch_path)
    if os.geteuid() != 0:
        log("SKIPPED: booting systemd in a container needs root")
        return 0
    if not os.access(TESTBED, os.X_OK):
        log(f"SKIPPED: no systemd testbed at {os.path.normpath(TESTBED)} (set TESTBED=/path/to/testbed.sh)")
        return 0
    PACKAGE = run(["make", "--no-print-directory", "-s", "-f", "Makefile", "-f", "-", "print-deb-package"], cwd=ROOT,
                  input="print-deb-package:\n\t@echo $(DEB_PACKAGE)\n").stdout.strip() or PACKAGE
    began = time.monotonic()
    out = tempfile.mkdtemp(prefix="hg-pkg-debs-")
    failed = 0
    try:
        log("building two packages with make deb")
        old, new = build("0.1.0~pkgtest1-1", out), build("0.1.0~pkgtest2-1", out)
        old_layout = old_layout_package(new, out)
        log(f"booting the testbed (TESTBED_NAME={ENV['TESTBED_NAME']})")
        tb("up", timeout=600)
        for deb in (old, new, old_layout):
            tb("copy-in", deb, "/tmp/" + os.path.basename(deb))
        tb("copy-in", os.path.join(ROOT, "Tests", "Acceptance", "guest_client.py"), CLIENT)
        # A real Debian system has /etc/hosts; the testbed's minimal root file system does not.
        guest("test -e /etc/hosts || printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts")
        baseline = leftovers()
        paths = package_paths(old, new, old_layout)
        existed_before = existing(paths)  # /usr/bin, /etc and the like
        steps = [("install", lambda: test_install(old)), ("upgrade_under_load", lambda: test_upgrade_under_load(new)),
                 ("measure_upgrade_without_socket", lambda: measure_upgrade_without_socket(old)),
                 ("purge", lambda: test_purge(baseline, paths, existed_before)),
                 ("upgrade_from_old_layout", lambda: test_upgrade_from_old_layout(old_layout, new, baseline, paths, existed_before))]
        for name, step in steps:
            started = time.monotonic()
            try:
                note = step()
                log(f"ok   {name} ({time.monotonic() - started:.1f}s): {note}")
            except Exception as error:
                failed += 1
                log(f"FAIL {name} ({time.monotonic() - started:.1f}s): {error}")
                if name == "install":
                    break
    finally:
        if not options.keep_up:
            tb("down", timeout=180, check_rc=False)
        shutil.rmtree(out, ignore_errors=True)
    log(f"{'FAILED' if failed else 'passed'} in {time.monotonic() - began:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
