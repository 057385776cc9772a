#!/usr/bin/env python3
"""Times one rolling restart of a process pool by watching /proc, and fires the trigger itself.

    rollwatch.py --pid PARENT --workers N [--timeout 120] -- TRIGGER COMMAND...

Records the parent's current children (the old generation), starts TRIGGER (for example
`hyperglassctl reload --wait` or `kill -HUP PARENT`), then samples the parent's children every
2 ms until none of the old ones is left and N children are alive (the roll is complete), or the
timeout passes. Prints one JSON object:

    trigger_exit        the trigger's exit status
    trigger_seconds     when the trigger command returned (for `reload --wait`: the roll as the
                        supervisor reports it)
    replaced_seconds    when the last old child had gone and N children were alive (null: timeout)
    min_live            the fewest children seen alive at any sample during the roll
    max_live            the most
    old, new            the pids before and after
"""
import argparse, json, os, subprocess, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--pid", type=int, required=True)
parser.add_argument("--workers", type=int, required=True)
parser.add_argument("--timeout", type=float, default=120)
parser.add_argument("trigger", nargs=argparse.REMAINDER)
args = parser.parse_args()
trigger = args.trigger[1:] if args.trigger[:1] == ["--"] else args.trigger


def children(pid):
    found = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.update(int(p) for p in f.read().split())
    except FileNotFoundError:
        pass
    # Zombies (exited, not yet reaped) do not serve: leave them out.
    alive = set()
    for child in found:
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(child)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return alive


old = children(args.pid)
if len(old) != args.workers:
    sys.exit(f"rollwatch: expected {args.workers} children of {args.pid}, found {len(old)}")
start = time.monotonic()
process = subprocess.Popen(trigger, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
trigger_seconds = None
trigger_exit = None
replaced_seconds = None
min_live, max_live = len(old), len(old)
now_children = old
while time.monotonic() - start < args.timeout:
    now_children = children(args.pid)
    elapsed = time.monotonic() - start
    min_live = min(min_live, len(now_children))
    max_live = max(max_live, len(now_children))
    if trigger_exit is None and process.poll() is not None:
        trigger_exit, trigger_seconds = process.returncode, elapsed
    if replaced_seconds is None and not (now_children & old) and len(now_children) == args.workers:
        replaced_seconds = elapsed
    if replaced_seconds is not None and trigger_exit is not None:
        break
    time.sleep(0.002)
if trigger_exit is None:
    try:
        process.wait(max(0.1, args.timeout - (time.monotonic() - start)))
        trigger_exit, trigger_seconds = process.returncode, time.monotonic() - start
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
output = process.stdout.read().decode(errors="replace").strip()
print(json.dumps({
    "trigger_exit": trigger_exit,
    "trigger_seconds": None if trigger_seconds is None else round(trigger_seconds, 3),
    "trigger_output": output[-300:],
    "replaced_seconds": None if replaced_seconds is None else round(replaced_seconds, 3),
    "min_live": min_live, "max_live": max_live,
    "old": sorted(old), "new": sorted(now_children),
}))
