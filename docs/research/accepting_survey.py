#!/usr/bin/env python3
"""Measures, for one server command, when /proc shows it accepting on an inherited listening socket.

The server is started the way hyperglass starts a worker: a TCP listener at fd 3, LISTEN_FDS=1,
LISTEN_PID = the worker's own pid, its own process group. While it starts, this script samples
every few milliseconds the worker's process tree and records, per signal, when it first appears
and when it goes away:

  epoll   the listener's socket inode is registered (with EPOLLIN) in an epoll set of the tree
          (/proc/P/fdinfo/EPFD: "tfd: N events: E ... ino: I"), matched by inode, not fd number
  accept  a thread is blocked in accept/accept4 on an fd that is the listener (/proc/P/task/T/syscall)
  poll    a thread is blocked in poll/ppoll/select/pselect6 with the listener in its set
          (the set is read from /proc/P/mem; needs ptrace access, i.e. an ancestor or root)

A client sends one request at t=0 (it waits in the backlog) and records when its response arrives:
that is when the server really served. The lag "served - signal" is how long a request sent at the
moment the signal appeared would still wait (large positive = false positive). Then SIGTERM goes to
the group and the script records when each signal disappears and when the tree is gone.

Usage: accepting_survey.py [--label L] [--term-after S] -- COMMAND...
Prints one JSON line.
"""
import argparse, json, os, re, signal, socket, struct, subprocess, sys, threading, time

SYSCALLS = {43: "accept", 288: "accept4", 7: "poll", 271: "ppoll", 23: "select", 270: "pselect6",
            232: "epoll_wait", 281: "epoll_pwait", 441: "epoll_pwait2", 426: "io_uring_enter"}


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(c) for c in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(pid):
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += children(p)
    return seen


def fd_targets(pid):
    out = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            pass
    return out


def read_mem(pid, addr, size):
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
            f.seek(addr)
            return f.read(size)
    except (OSError, ValueError, OverflowError):
        return None


def sample(root, inode):
    """Returns {signal: evidence} for what is true right now."""
    found = {}
    want = f"socket:[{inode}]"
    for pid in tree(root):
        fds = fd_targets(pid)
        listener_fds = {fd for fd, t in fds.items() if t == want}
        for fd, t in fds.items():
            if t == "anon_inode:[eventpoll]":
                try:
                    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                        info = f.read()
                except OSError:
                    continue
                for m in re.finditer(r"tfd:\s*(\d+)\s+events:\s*([0-9a-f]+).*?ino:\s*([0-9a-f]+)", info):
                    if int(m.group(3), 16) == inode and int(m.group(2), 16) & 1:
                        found.setdefault("epoll", f"pid {pid} epfd {fd} tfd {m.group(1)} events {m.group(2)}")
            if t == "anon_inode:[io_uring]":
                found.setdefault("io_uring_present", f"pid {pid} fd {fd}")
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                    parts = f.read().split()
            except OSError:
                continue
            if not parts or parts[0] == "running" or parts[0] == "-1":
                continue
            nr = int(parts[0])
            args = [int(a, 16) for a in parts[1:7]]
            name = SYSCALLS.get(nr)
            if name in ("accept", "accept4") and args[0] in listener_fds:
                found.setdefault("accept", f"pid {pid} tid {tid} {name}({args[0]})")
            elif name in ("poll", "ppoll") and 0 < args[1] < 4096:
                mem = read_mem(pid, args[0], 8 * args[1])
                if mem is None:
                    found.setdefault("poll_unreadable", f"pid {pid} tid {tid} {name}")
                    continue
                for i in range(args[1]):
                    fd, events, _ = struct.unpack_from("ihh", mem, 8 * i)
                    if fd in listener_fds and events & 1:
                        found.setdefault("poll", f"pid {pid} tid {tid} {name}(fd {fd})")
            elif name in ("select", "pselect6") and 0 < args[0] <= 65536 and args[1]:
                mem = read_mem(pid, args[1], (args[0] + 7) // 8)
                if mem is None:
                    found.setdefault("poll_unreadable", f"pid {pid} tid {tid} {name}")
                    continue
                for fd in listener_fds:
                    if fd < args[0] and mem[fd // 8] >> (fd % 8) & 1:
                        found.setdefault("poll", f"pid {pid} tid {tid} {name}(fd {fd})")
            found.setdefault("syscalls", set()).add(name or str(nr))
    if "syscalls" in found:
        found["syscalls"] = ",".join(sorted(found["syscalls"]))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="")
    ap.add_argument("--term-after", type=float, default=1.0, help="seconds after the first response")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--path", default="/")
    ap.add_argument("command", nargs="+")
    a = ap.parse_args()

    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(2048)
    port = lst.getsockname()[1]
    inode = os.fstat(lst.fileno()).st_ino

    def pre():
        os.dup2(lst.fileno(), 3)

    env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="http")
    env.pop("NOTIFY_SOCKET", None)
    t0 = time.monotonic()
    proc = subprocess.Popen(["/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$@"', "sh"] + a.command,
                            env=env, preexec_fn=pre, pass_fds=(3,), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=open(f"/tmp/survey-{os.getpid()}.log", "w"))
    served = {}

    def client():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=a.timeout) as s:
                s.sendall(f"GET {a.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                data = s.recv(100)
                served["t"] = time.monotonic() - t0
                served["status"] = data.split(b"\r\n")[0].decode(errors="replace")
        except Exception as e:
            served["error"] = repr(e)

    th = threading.Thread(target=client, daemon=True)
    th.start()
    first, last_seen, gone, evidence = {}, {}, {}, {}
    syscalls_seen = set()
    term_at = None
    deadline = t0 + a.timeout
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        s = sample(proc.pid, inode)
        if "syscalls" in s:
            syscalls_seen.update(s.pop("syscalls").split(","))
        for k, v in s.items():
            if k not in first:
                first[k] = round(now, 4)
                evidence[k] = v
            last_seen[k] = round(now, 4)
            gone.pop(k, None)
        for k in first:
            if k not in s and k not in gone:
                gone[k] = round(now, 4)
        if term_at is None and "t" in served and now > served["t"] + a.term_after:
            term_at = round(now, 4)
            os.killpg(proc.pid, signal.SIGTERM)
        if proc.poll() is not None and not tree(proc.pid)[1:]:
            break
        time.sleep(0.002)
    exited = round(time.monotonic() - t0, 4) if proc.poll() is not None else None
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    th.join(1)
    res = {"label": a.label, "served": served.get("t") and round(served["t"], 4), "status": served.get("status"),
           "client_error": served.get("error"), "first": first, "gone": gone, "term": term_at, "exited": exited,
           "lag_ms": {k: round((served["t"] - v) * 1000, 1) for k, v in first.items() if "t" in served},
           "evidence": evidence, "syscalls": sorted(syscalls_seen), "exit_status": proc.returncode}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
