#!/usr/bin/env python3
"""The runtime image without a container engine: its files in a directory, run as PID 1.

No Docker or Podman runs here, so this builds what the Containerfile's runtime stage would hold:
a Debian bookworm minbase root (mmdebstrap; debian:bookworm-slim is the same package set less the
documentation), plus `make image-root` (what the build stage copies in), with the ENV, USER and
ENTRYPOINT read from the Containerfile itself. It then starts the entrypoint as PID 1 of a new PID
namespace chrooted into that directory, as the image's user, and checks that the binaries run there
(no Swift toolchain, only the base image's libraries): the pool serves, the HEALTHCHECK command
passes inside the root, SIGTERM drains it and it exits 0.

  python3 Tests/Container/image_root_test.py [--scratch-path .build]     (make test-image-root)

Root only; skips when mmdebstrap or unshare is missing. The minbase root is cached in
SCRATCH/image-base (delete it to rebuild); each run works on a fresh copy.
"""
import argparse, json, os, re, shlex, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "Acceptance"))
import container_test as ct  # noqa: E402
import guest_client  # noqa: E402


def runtime_stage(path):
    """ENV, USER, ENTRYPOINT and HEALTHCHECK of the Containerfile's last stage."""
    text = open(path).read().replace("\\\n", " ")
    stage = text.split("\nFROM ")[-1]
    env, user, entry, health = {}, None, None, None
    for line in stage.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
        elif word == "USER":
            user = rest.strip()
        elif word == "ENTRYPOINT":
            entry = json.loads(rest)
        elif word == "HEALTHCHECK":
            health = json.loads(rest[rest.index("CMD") + 3:].strip())
    return env, user, entry, health


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch-path", default=".build")
    options = parser.parse_args()
    scratch = options.scratch_path if os.path.isabs(options.scratch_path) else os.path.join(ROOT, options.scratch_path)
    if os.geteuid() != 0:
        print("image-root: SKIPPED: chroot and a PID namespace need root")
        return 0
    if not shutil.which("mmdebstrap") or not shutil.which("unshare"):
        print("image-root: SKIPPED: mmdebstrap or unshare not found (apt-get install mmdebstrap)")
        return 0
    began = time.monotonic()
    base = os.path.join(scratch, "image-base")
    if not os.path.isdir(os.path.join(base, "usr")):
        print("image-root: building a bookworm minbase root with mmdebstrap (cached)", flush=True)
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["mmdebstrap", "--variant=minbase", "--include=libsystemd0", "bookworm", base],
                       check=True, timeout=900, stdout=subprocess.DEVNULL)
    env, user, entry, health = runtime_stage(os.path.join(ROOT, "Containerfile"))
    uid, _, gid = user.partition(":")
    rootfs = tempfile.mkdtemp(prefix="hg-image-root-")
    unshare = None
    try:
        subprocess.run(["cp", "-a", base + "/.", rootfs], check=True, timeout=300)
        subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, "image-root", f"IMAGE_ROOT={rootfs}",
                        f"SCRATCH={scratch}", f"IMAGE_UID={uid}"], check=True, timeout=120)
        port = ct.free_port()
        # As a runtime would: the image's environment, plus a free port instead of 8001 (shared host).
        environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **env,
                       "HYPERGLASS_BIND": f"127.0.0.1:{port}"}
        argv = ["unshare", "--pid", "--fork", "--mount", "--kill-child", f"--root={rootfs}", "--mount-proc",
                f"--setuid={uid}", f"--setgid={gid or uid}", *entry]
        unshare = subprocess.Popen(argv, env=environment, stdin=subprocess.DEVNULL)
        pid1 = ct.wait_for("PID 1", lambda: (ct.proc_children(unshare.pid) or [None])[0], 10)
        ct.check(ct.Container.nspid(pid1) == 1, "the entrypoint is not PID 1")
        ct.check(os.readlink(f"/proc/{pid1}/root") == rootfs, "the entrypoint does not run in the image root")

        def in_image(command):
            return subprocess.run(["nsenter", "--target", str(pid1), "--pid", "--mount", "--root", "--wd",
                                   f"--setuid={uid}", f"--setgid={gid or uid}", "--", *command],
                                  capture_output=True, text=True, timeout=15, env=environment)

        def healthy():
            return in_image(health).returncode == 0
        ct.wait_for("the HEALTHCHECK command to pass", healthy, 30, interval=0.2)
        status, body = guest_client.get("127.0.0.1", port, "/whoami")
        ct.check(status == 200, f"GET /whoami: {status}")
        report = in_image(health).stdout.strip()
        os.kill(pid1, signal.SIGTERM)
        code = unshare.wait(timeout=40)
        ct.check(code == 0, f"exit status after SIGTERM: {code}")
        print(f"image-root: ok in {time.monotonic() - began:.1f}s: entrypoint {entry} as uid {uid} is PID 1 in a "
              f"bookworm minbase root; HEALTHCHECK: {report}; SIGTERM: exit 0", flush=True)
        return 0
    except Exception as error:
        print(f"image-root: FAIL: {error}", flush=True)
        return 1
    finally:
        if unshare and unshare.poll() is None:
            unshare.kill()
            unshare.wait(10)
        shutil.rmtree(rootfs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
