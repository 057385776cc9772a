#!/usr/bin/env python3
"""`make install`/`uninstall` beside `pip install hyperglass`, in every order, into staging directories.

The real pip (the venv's) installs the real hyperglass 1.0.4 wheel into the same staged /usr/local, so
its console script lands where `sudo pip3 install hyperglass` puts it. Checks that neither install
breaks the other: the supervisor stays runnable as hyperglass-supervisor, pip's `hyperglass` is never
replaced or removed by us, our alias is a symlink only where the name was free or ours, and nothing of
ours creates /etc/hyperglass. Exit 0 when every check passed, 1 otherwise.
  install_test.py --venv VENV --bin .build/debug
"""
import argparse, os, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []


def check(condition, message):
    print(f"test-hyperglass-install: {'ok  ' if condition else 'FAIL'} {message}", flush=True)
    if not condition:
        failures.append(message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--venv", required=True)
    parser.add_argument("--bin", required=True, help="directory with the built hyperglass, hyperglass-worker, hyperglassctl")
    args = parser.parse_args()
    built = os.path.join(args.bin, "hyperglass")
    work = tempfile.mkdtemp(prefix="hyperglass-install-test-")

    def make(stage, target):
        r = subprocess.run(["make", "--no-print-directory", "-s", f"DESTDIR={stage}", f"RELEASE_DIR={args.bin}", target],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"make {target} into {os.path.basename(stage)} succeeds ({r.stderr.strip()[:200]})")
        return r.stdout

    def pip_install(stage):
        wheel_dir = os.path.join(work, "wheel")
        if not os.path.isdir(wheel_dir):
            subprocess.run([os.path.join(args.venv, "bin", "pip"), "download", "-q", "--no-deps", "-d", wheel_dir, "hyperglass==1.0.4"],
                           check=True, timeout=300)
        wheel = os.path.join(wheel_dir, os.listdir(wheel_dir)[0])
        subprocess.run([os.path.join(args.venv, "bin", "pip"), "install", "-q", "--no-deps", "--ignore-installed",
                        "--prefix", os.path.join(stage, "usr/local"), wheel], check=True, timeout=300)

    def is_pip_script(path):
        return os.path.isfile(path) and not os.path.islink(path) and b"from hyperglass.console import" in open(path, "rb").read()

    def supervisor_ok(stage):
        path = os.path.join(stage, "usr/local/bin/hyperglass-supervisor")
        r = subprocess.run([path, "version"], capture_output=True, text=True, timeout=10) if os.path.isfile(path) else None
        return r is not None and r.returncode == 0 and r.stdout.startswith("hyperglass ")

    try:
        # 1. Ours alone: the alias is a relative symlink; no /etc/hyperglass; uninstall leaves nothing.
        s = os.path.join(work, "ours")
        make(s, "install")
        alias = os.path.join(s, "usr/local/bin/hyperglass")
        check(os.path.islink(alias) and os.readlink(alias) == "hyperglass-supervisor", "alone: hyperglass is a symlink to hyperglass-supervisor")
        check(supervisor_ok(s), "alone: hyperglass-supervisor runs")
        check(not os.path.exists(os.path.join(s, "etc/hyperglass")), "alone: nothing creates /etc/hyperglass")
        check(os.path.isfile(os.path.join(s, "etc/hyperglass-supervisor/supervisor.conf")), "alone: the configuration is in /etc/hyperglass-supervisor")
        make(s, "uninstall")
        left = [os.path.join(d, f) for d, _, fs in os.walk(s) for f in fs] + [os.path.join(d, f) for d, ds, _ in os.walk(s) for f in ds if os.path.islink(os.path.join(d, f))]
        check(not left, f"alone: uninstall leaves no file or link ({left})")

        # 2. Ours, then pip: pip replaces the symlink by its script; the supervisor keeps working; ours keeps off pip's.
        s = os.path.join(work, "ours-then-pip")
        make(s, "install")
        pip_install(s)
        alias = os.path.join(s, "usr/local/bin/hyperglass")
        check(is_pip_script(alias), "ours then pip: hyperglass is pip's script (the symlink was replaced, not written through)")
        check(supervisor_ok(s), "ours then pip: hyperglass-supervisor still runs")
        out = make(s, "install")
        check(is_pip_script(alias) and f"kept {alias}" in out, "ours then pip, then make install again: pip's script kept, and said so")
        make(s, "uninstall")
        check(is_pip_script(alias), "ours then pip, uninstall: pip's script stays")
        check(not os.path.exists(os.path.join(s, "usr/local/bin/hyperglass-supervisor")), "ours then pip, uninstall: the supervisor is gone")

        # 3. pip, then ours: pip's script stays, the supervisor is installed beside it.
        s = os.path.join(work, "pip-then-ours")
        pip_install(s)
        out = make(s, "install")
        alias = os.path.join(s, "usr/local/bin/hyperglass")
        check(is_pip_script(alias) and "looking glass" in out, "pip then ours: pip's script kept, with a message naming it")
        check(supervisor_ok(s), "pip then ours: hyperglass-supervisor runs")
        make(s, "uninstall")
        check(is_pip_script(alias), "pip then ours, uninstall: pip's script stays")

        # 4. The earlier layout: the supervisor binary at bin/hyperglass, its config and examples in /etc/hyperglass.
        s = os.path.join(work, "earlier")
        os.makedirs(os.path.join(s, "usr/local/bin"))
        os.makedirs(os.path.join(s, "etc/hyperglass/examples"))
        shutil.copy(built, os.path.join(s, "usr/local/bin/hyperglass"))
        old_conf = os.path.join(s, "etc/hyperglass/supervisor.conf")
        with open(old_conf, "w") as f:
            f.write("[supervisor]\nworkers = 3\n")
        for name in os.listdir(os.path.join(ROOT, "config/examples")):
            if name.endswith(".py"):
                shutil.copy(os.path.join(ROOT, "config/examples", name), os.path.join(s, "etc/hyperglass/examples", name))
        out = make(s, "install")
        alias = os.path.join(s, "usr/local/bin/hyperglass")
        check(os.path.islink(alias) and os.readlink(alias) == "hyperglass-supervisor", "earlier layout: its binary at bin/hyperglass is replaced by the symlink")
        check(open(old_conf).read() == "[supervisor]\nworkers = 3\n" and "still in use" in out, "earlier layout: its configuration is kept, with a notice")
        check(not os.path.exists(os.path.join(s, "etc/hyperglass-supervisor/supervisor.conf")), "earlier layout: no new configuration shadows the old one")
        check(not os.path.exists(os.path.join(s, "etc/hyperglass/examples")), "earlier layout: its unchanged example apps are moved out of /etc/hyperglass")
        make(s, "uninstall")
        check(os.path.exists(old_conf) and not os.path.lexists(alias), "earlier layout, uninstall: the changed configuration stays, the alias goes")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"test-hyperglass-install: {len(failures)} check(s) failed", flush=True)
        return 1
    print("test-hyperglass-install: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
