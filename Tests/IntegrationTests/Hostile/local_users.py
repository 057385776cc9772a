"""Hostile local users and workers (issue 11, items 1, 2, 4, 9): the runtime directory, the workers' sockets, signals."""
import json, os, re, signal, socket, subprocess, tempfile, time

from support import *  # noqa: F401,F403  (the harness: Supervisor, users, bounded waits)
import support


def signal_after_reap():
    """After wait4 reaps a worker, no kill() may name its pid or process group (the pid may be someone
    else's by then). The supervisor runs under strace; a worker is killed, the pool replaced and stopped."""
    trace = tempfile.mktemp(prefix="hg-strace-")
    s = Supervisor(workers=2, wrapper=["strace", "-qq", "-o", trace, "-e", "trace=kill,wait4,waitid,pidfd_send_signal"])
    try:
        if not wait_for(lambda: len(s.children()) == 2, 10):
            fail("the workers did not start: " + s.log_text())
        victim = s.children()[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in s.children() and len(s.children()) == 2, 10)
        s.stop()
        lines = open(trace).read().splitlines()
    finally:
        s.stop()
        if os.path.exists(trace):
            os.unlink(trace)
    reaped, late = set(), []
    for line in lines:
        m = re.match(r"wait4\((-?\d+),.*= (\d+)$", line)
        if m and int(m.group(2)) > 0:
            reaped.add(int(m.group(2)))
            continue
        m = re.match(r"kill\((-?\d+), ", line)
        if m and abs(int(m.group(1))) in reaped:
            late.append(line)
    figures = {"reaped": len(reaped), "kills_after_reap": len(late), "example": late[:2]}
    if not reaped:
        fail("strace saw no reaped child: " + "\n".join(lines[-10:]), **figures)
    if late:
        fail("the supervisor signalled reaped pids: " + "; ".join(late[:3]), **figures)
    print(json.dumps(figures))


def foreign_runtime_dir():
    """A control-socket directory created first by another user is refused, with a message that says why."""
    base = tempfile.mkdtemp(prefix="hg-hostile-")
    os.chmod(base, 0o755)
    directory = os.path.join(base, "run")
    os.mkdir(directory, 0o755)
    os.chown(directory, READER[0], READER[1])
    try:
        code, log = start_with_control_dir(directory, timeout=3)
    finally:
        subprocess.run(["rm", "-rf", base])
    figures = {"exit": code, "log": log.strip().splitlines()[-1:] if log.strip() else []}
    if code in (None, 0) or f"owned by uid {READER[0]}" not in log:
        fail("a directory owned by another user was used for the control socket", **figures)
    print(json.dumps(figures))


def world_writable_runtime_dir():
    """A control-socket directory anyone may write to (not sticky) is refused; so is one for a unix: bind."""
    base = tempfile.mkdtemp(prefix="hg-hostile-")
    os.chmod(base, 0o755)
    directory = os.path.join(base, "run")
    os.mkdir(directory)
    os.chmod(directory, 0o777)
    try:
        code, log = start_with_control_dir(directory, timeout=3)
        bind_code, bind_log = start_with_control_dir(directory, timeout=3, bind=f"unix:{directory}/http.sock",
                                                     control=os.path.join(base, "control.sock"))
    finally:
        subprocess.run(["rm", "-rf", base])
    figures = {"exit": code, "log": log.strip().splitlines()[-1:] if log.strip() else [],
               "unix_bind_exit": bind_code, "unix_bind_log": bind_log.strip().splitlines()[-1:] if bind_log.strip() else []}
    if code in (None, 0) or "writable by other users" not in log:
        fail("a world-writable directory was used for the control socket", **figures)
    if bind_code in (None, 0) or "writable by other users" not in bind_log:
        fail("a world-writable directory was used for a unix: bind", **figures)
    print(json.dumps(figures))


def symlink_swap():
    """The socket file is swapped for a symlink right after bind() (strace holds the supervisor there
    for 0.8 s, as a lucky attacker's race would): no mode or owner change may reach the link's target."""
    base = tempfile.mkdtemp(prefix="hg-hostile-")
    os.chmod(base, 0o755)
    target = os.path.join(base, "precious")
    with open(target, "w") as f:
        f.write("secret\n")
    os.chmod(target, 0o600)
    sock = os.path.join(base, "control.sock")
    port = free_port()
    argv = ["strace", "-qq", "-o", "/dev/null", "-e", "trace=bind", "-e", "inject=bind:delay_exit=800000",
            os.path.join(support.PRODUCTS, "hyperglass"), "start", "--bind", f"127.0.0.1:{port}", "--control-socket", sock,
            "--control-group", "nogroup", "--workers", "1", "--", TESTWORKER]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    swapped = False
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if stat_is_socket(sock):
                    link = os.path.join(base, "link")
                    os.symlink(target, link)
                    os.rename(link, sock)
                    swapped = True
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        time.sleep(2.5)
    finally:
        for pid in child_pids(process.pid):
            for child in child_pids(pid):
                os.kill(child, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()
    info = os.stat(target)
    subprocess.run(["rm", "-rf", base])
    figures = {"swapped": swapped, "target_mode": oct(info.st_mode & 0o777), "target_gid": info.st_gid}
    if not swapped:
        fail("the socket never appeared to be swapped", **figures)
    if info.st_mode & 0o777 != 0o600 or info.st_gid != 0:
        fail("the supervisor changed the mode or group of a file a symlink pointed to", **figures)
    print(json.dumps(figures))


def impostor_worker():
    """A root worker sends WATCHDOG=trigger with its sibling's pid in SCM_CREDENTIALS: the sibling is untouched."""
    s = Supervisor(workers=2, worker=os.path.join(HERE, "impostor_worker.py"))
    try:
        if not wait_for(lambda: "sent WATCHDOG=trigger as pid" in s.log_text(), 10):
            fail("the impostor did not send: " + s.log_text())
        time.sleep(1.5)
        log = s.log_text()
        acted = "watchdog triggered by the worker" in log
        figures = {"acted_on_sibling": acted}
        if acted:
            fail("the supervisor acted on a worker because another one claimed its pid: " + log[-300:], **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def squat_worker_sockets():
    """Another user looks up the supervisor's worker sockets in /proc/net/unix, tries to reach each and to
    pre-bind the names the next workers will get; then workers are killed and must come back."""
    s = Supervisor(extra=["--health-path", "/health"], workers=1)
    try:
        wait_for(lambda: len(s.children()) == 1, 5)

        def attack():
            reached, squatted, names = 0, 0, []
            for line in open("/proc/net/unix").read().splitlines()[1:]:
                fields = line.split()
                # This supervisor's: its abstract names carry its pid, its files are under its directory.
                if len(fields) >= 8 and (f"hyperglass-{s.pid}-" in fields[7] or f"hyperglass/{s.pid}/" in fields[7]
                                         or fields[7].startswith(s.dir + "/workers.")):
                    names.append(fields[7])
            # The files' likely names, whether or not the listing shows them (the directory is 0755).
            for entry in os.listdir(s.dir):
                if entry.startswith("workers."):
                    names += [f"{s.dir}/{entry}/{kind}-0-1-1" for kind in ("health", "notify")]
            for name in set(names):
                address = "\0" + name[1:] if name.startswith("@") else name
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    try:
                        with socket.socket(socket.AF_UNIX, kind) as c:
                            if kind == socket.SOCK_DGRAM:
                                c.sendto(b"STATUS=hello", address)
                            else:
                                c.connect(address)
                            reached += 1
                    except OSError:
                        pass
                prefix = address.rsplit("-", 1)[0] if "health-" in address or "notify-" in address else None
                for generation in range(1, 30):
                    if not prefix:
                        break
                    try:
                        squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        squatter.bind(f"{prefix}-{generation}")
                        squatter.listen(1)
                        squatted += 1
                        held.append(squatter)
                    except OSError:
                        squatter.close()
            return {"names": len(set(names)), "reached": reached, "squatted": squatted}
        held = []
        read, write = os.pipe()
        attacker = hostile_child(READER, lambda: (os.write(write, json.dumps(attack()).encode() + b"\n"), time.sleep(60)))
        os.close(write)
        seen = json.loads(os.read(read, 4096) or b"{}")
        os.close(read)
        restarted = True
        for _ in range(2):
            before = s.children()
            for pid in before:
                os.kill(pid, signal.SIGKILL)
            restarted = restarted and wait_for(lambda: len(s.children()) == 1 and s.children() != before, 5)
        log = s.log_text()
        end(attacker)
        figures = dict(seen, restarted=restarted, address_in_use="Address already in use" in log)
        if seen.get("reached") or seen.get("squatted") or not restarted or "Address already in use" in log:
            fail("another user reached or squatted the workers' private sockets", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def rescale_while_draining():
    """A slot removed and added again while its old worker still drains gets new sockets, not the old names."""
    s = Supervisor(extra=["--health-path", "/health", "--graceful-timeout", "10s"], workers=2, worker_args=["--ignore-term"])
    try:
        down = s.request({"v": 1, "cmd": "workers", "set": 1})
        # The bound is generous: what is judged is that the slot starts at all, not how fast a loaded machine is.
        up = s.request({"v": 1, "cmd": "workers", "set": 2, "wait": True}, timeout=20)
        log = s.log_text()
        figures = {"down": down.get("ok"), "up": up.get("ok"), "address_in_use": "Address already in use" in log}
        if not up.get("ok") or "Address already in use" in log:
            fail(f"the re-added slot did not start while the old worker drained (reply {up}): " + log[-400:], **figures)
        print(json.dumps(figures))
    finally:
        for child in s.children():
            os.kill(child, signal.SIGKILL)
        s.stop()
