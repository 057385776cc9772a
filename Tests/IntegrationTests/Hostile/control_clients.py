"""Hostile clients of the control socket (issue 11, item 3): bounded per client and in total."""
import json, os, re, signal, socket, subprocess, tempfile, time

from support import *  # noqa: F401,F403  (the harness: Supervisor, users, bounded waits)
import support


def idle_lockout():
    """64 idle connections from a control_group member, pinging now and then: root still gets in."""
    s = Supervisor()
    try:
        def hold():
            sockets = []
            for _ in range(80):
                try:
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    c.connect(s.control)
                    sockets.append(c)
                except OSError:
                    pass
            for _ in range(200):  # bounded: about 20 s
                for c in sockets:
                    try:
                        c.send(b'{"cmd":"ping"}\n')
                    except OSError:
                        pass
                time.sleep(0.1)
        attacker = hostile_child(READER, hold)
        time.sleep(1.0)
        results = [timed_status(s, timeout=2) for _ in range(5)]
        end(attacker)
        figures = {"root_status_ok": sum(ok for ok, _ in results), "slowest_s": round(max(t for _, t in results), 3)}
        if not all(ok for ok, _ in results):
            fail("root was locked out by 80 idle connections", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def pipelined_flood():
    """A control_group member pipelines status requests as fast as it can and never reads: memory, the
    systemd watchdog and root's status must not suffer."""
    s = Supervisor(workers=4, watchdog_usec=1_000_000)
    try:
        wait_for(lambda: len(s.pings) >= 2, 5)
        rss_before = s.rss_mb()

        def flood():
            sockets = []
            for _ in range(8):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(s.control)
                c.setblocking(False)
                sockets.append(c)
            line = b'{"cmd":"status"}\n' * 1000
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                for c in sockets:
                    try:
                        c.send(line)
                    except BlockingIOError:
                        pass
                    except OSError:
                        sockets.remove(c)
                        try:
                            n = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                            n.connect(s.control)
                            n.setblocking(False)
                            sockets.append(n)
                        except OSError:
                            pass
                time.sleep(0.005)
            time.sleep(30)
        start = time.monotonic()
        attacker = hostile_child(READER, flood)
        latencies = []
        while time.monotonic() - start < 8:
            ok, took = timed_status(s, timeout=5)
            latencies.append(took if ok else float("inf"))
            time.sleep(0.1)
        gap = s.max_ping_gap(start)
        rss_during = s.rss_mb()
        end(attacker)
        figures = {"watchdog_max_gap_s": round(gap, 3), "root_status_slowest_s": round(max(latencies), 3),
                   "root_status_count": len(latencies), "rss_mb_before": round(rss_before, 1), "rss_mb_during": round(rss_during, 1),
                   "supervisor_cpu_s": round(s.cpu_seconds(), 2)}
        if gap > 0.8:
            fail(f"the watchdog pings (every 0.5 s) stalled for {gap:.2f} s", **figures)
        if max(latencies) > 0.5:
            fail(f"root's status took {max(latencies):.2f} s under the flood", **figures)
        if rss_during - rss_before > 20:
            fail(f"RSS grew {rss_during - rss_before:.1f} MB", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def half_close_after_long_line():
    """Unread replies, an over-long line, then shutdown(SHUT_WR), then silence: no busy loop."""
    s = Supervisor(workers=4)
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(s.control)
        c.setblocking(False)
        sent = 0
        # Requests whose replies it never reads, a pause for them to be answered, then the over-long line.
        for payload, pause in ((b'{"cmd":"status"}\n' * 3000, 1.0), (b"x" * (70 * 1024), 0.0)):
            done = 0
            deadline = time.monotonic() + 2
            while done < len(payload) and time.monotonic() < deadline:
                try:
                    done += c.send(payload[done:done + 8192])
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break
            sent += done
            time.sleep(pause)
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        time.sleep(2.0)  # the replies that fit (256 KiB) are produced by now; what follows should be idle
        before = s.cpu_seconds()
        time.sleep(2)
        used = s.cpu_seconds() - before
        ok, took = timed_status(s, timeout=3)
        c.close()
        figures = {"sent": sent, "cpu_s_in_2s": round(used, 3), "status_s": round(took, 3)}
        if used > 0.3 or not ok:
            fail(f"the supervisor used {used:.2f} s of CPU in 2 s idle time with a half-closed client", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def emfile():
    """With its fd limit reached by connections, accept() must not spin and the owner must get in."""
    s = Supervisor(nofile=48)
    held = []
    try:
        for _ in range(60):
            try:
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(s.control)
                held.append(c)
            except OSError:
                break
        time.sleep(0.3)
        before = s.cpu_seconds()
        time.sleep(2)
        used = s.cpu_seconds() - before
        ok, took = timed_status(s, timeout=3)
        figures = {"connections": len(held), "cpu_s_in_2s": round(used, 3), "status_ok": ok, "status_s": round(took, 3)}
        if used > 0.3:
            fail(f"the supervisor used {used:.2f} s of CPU in 2 s at EMFILE", **figures)
        if not ok:
            fail("the owner's status was not answered at EMFILE", **figures)
        print(json.dumps(figures))
    finally:
        for c in held:
            c.close()
        s.stop()


def drip():
    """A line dripped one byte per 0.4 s: timed out 5 s after its first byte, not served."""
    s = Supervisor()
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(s.control)
        c.settimeout(0.05)
        start = time.monotonic()
        reply = b""
        for byte in b'{"cmd":"ping"}' + b" " * 40 + b"\n":
            try:
                c.send(bytes([byte]))
            except OSError:
                pass  # closed by the supervisor: its last word is still there to read
            try:
                reply += c.recv(4096)
            except (socket.timeout, OSError):
                pass
            if reply.endswith(b"\n") or time.monotonic() - start > 12:
                break
            time.sleep(0.35)
        took = time.monotonic() - start
        c.close()
        figures = {"reply": reply.decode(errors="replace").strip(), "after_s": round(took, 2)}
        if b"timed out waiting for a complete request line" not in reply or took > 6.5:
            fail("a dripped line was not timed out 5 s after its first byte", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()


def request_then_shutdown():
    """A complete request followed at once by shutdown(SHUT_WR) is executed and answered."""
    s = Supervisor()
    try:
        answers = []
        for _ in range(20):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(3)
            # The supervisor is stopped meanwhile, so it finds the requests and the end of input at once.
            os.kill(s.pid, signal.SIGSTOP)
            try:
                c.connect(s.control)
                c.sendall(b'{"cmd":"ping"}\n{"cmd":"version"}\n')
                c.shutdown(socket.SHUT_WR)
            finally:
                os.kill(s.pid, signal.SIGCONT)
            data = b""
            try:
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            c.close()
            answers.append(data.count(b"\n"))
        figures = {"replies_per_connection": answers}
        if any(n != 2 for n in answers):
            fail("requests followed by shutdown(SHUT_WR) were not all answered", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()
