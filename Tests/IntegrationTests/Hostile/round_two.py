"""Hardening, round two (issue 25): what a hostile client or an unlucky operator could still do."""
import json, os, socket, time

from support import Supervisor, fail, wait_for


def fd_limit():
    """Under `ulimit -n 128`, `workers 150` and autoscaling to 100 are refused or capped with the reason,
    and with crash_loop = exit the supervisor does not exit."""
    s = Supervisor(nofile=128, workers=2, extra=["--crash-loop", "exit"])
    try:
        reply = s.request({"v": 1, "cmd": "workers", "set": 150})
        figures = {"reply": reply}
        if reply.get("ok") is not False or "LimitNOFILE" not in reply.get("error", ""):
            fail("workers 150 under ulimit -n 128 was not refused with the reason", **figures)
        limit = int(open(f"/proc/{s.pid}/limits").read().split("Max open files")[1].split()[0])
        figures["soft_nofile"] = limit
        time.sleep(1)
        if s.process.poll() is not None:
            fail("the supervisor exited", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()
    # Autoscaling ceiling: a range beyond what fits is capped at start, and the status shows the cap.
    s = Supervisor(nofile=128, workers="auto:2-100", extra=["--crash-loop", "exit"])
    try:
        status = s.request({"v": 1, "cmd": "status"})
        scaling = status.get("autoscaling") or {}
        figures = {"autoscaling": scaling}
        if not scaling.get("configured_max") or scaling["configured_max"] >= 100:
            fail("an autoscaling ceiling of 100 under ulimit -n 128 was not capped", **figures)
        if "RLIMIT_NOFILE" not in s.log_text():
            fail("the cap was not said in the log", **figures)
        print(json.dumps(figures))
    finally:
        s.stop()
