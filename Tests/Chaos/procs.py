"""What /proc says about the supervisor's process tree, by pid and process group only (never by name).

`Tracker` samples the supervisor's children in a thread: it keeps a pidfd for every worker it has seen
(so the driver can signal it without racing pid reuse, and learn the moment it died), the process
group of each (a worker leads its own), and any zombie that outlives a short grace while the
supervisor is running.
"""
import ctypes, os, select, threading, time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Orphans of the supervisor's tree come to us, not to init: then they can be counted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def stat(pid):
    """(state, ppid, pgrp, starttime) of pid, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def descendants(pid):
    found, todo = [], children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children(child)
    return found


def schedstat(pid):
    """(seconds on a CPU, seconds waiting on a run queue) of pid so far."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            on_cpu, waiting, _ = f.read().split()
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def in_groups(pgids):
    """Every live process (zombies included) whose process group is one of pgids."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s and s[2] in pgids:
                found.append((int(name), s[0]))
    return found


class Tracker:
    """Watches the supervisor's children every `interval` seconds until stopped."""

    def __init__(self, supervisor_pid, supervisor_running, interval=0.01, zombie_grace=1.0):
        self.supervisor = supervisor_pid
        self.supervisor_running = supervisor_running  # callable: (running now, monotonic time it last resumed)
        self.interval = interval
        self.zombie_grace = zombie_grace
        self.lock = threading.Lock()
        self.pidfds = {}      # pid -> pidfd, workers alive or not yet seen dead
        self.pgids = set()    # every worker's process group
        self.seen = 0
        self.deaths = []      # monotonic times a worker was seen to have exited
        self.death_of = {}    # pid -> the same, by worker
        self.zombie_since = {}
        self.lingering_zombies = set()
        self.most_zombies = 0
        self.wchans = {}  # kernel function -> samples the supervisor was seen asleep in it (not epoll, not stopped)
        self.blocked_on_notify = []  # monotonic times the supervisor was seen waiting for our notify reader
        self.sched = []       # (monotonic, supervisor's CPU seconds, its run-queue wait seconds)
        self.running = True
        self.poller = select.poll()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            self._sample()
            for fd, _ in self.poller.poll(self.interval * 1000):
                self._died(fd)

    def _sample(self):
        now = time.monotonic()
        self.sched.append((now, *schedstat(self.supervisor)))
        try:  # where it sleeps, when not in epoll_wait: sd_notify's sendmsg (our notify reader is behind), vfork...
            with open(f"/proc/{self.supervisor}/wchan") as f:
                wchan = f.read()
            if wchan == "unix_wait_for_peer":
                self.blocked_on_notify.append(now)
            if wchan not in ("do_epoll_wait", "ep_poll", "0", "do_signal_stop", ""):
                self.wchans[wchan] = self.wchans.get(wchan, 0) + 1
        except OSError:
            pass
        waited = self.sched[-1][2]
        zombies = 0
        for pid in children(self.supervisor):
            s = stat(pid)
            if s is None or s[1] != self.supervisor:
                continue
            if s[0] == "Z":
                zombies += 1
                # The grace counts only time the supervisor could run: not stopped by us (the grace
                # restarts at SIGCONT), not waiting on a run queue for a CPU the machine gave to others.
                running, resumed = self.supervisor_running()
                since, since_waited = self.zombie_since.setdefault(pid, (now, waited))
                if resumed > since:
                    since, since_waited = self.zombie_since[pid] = (now, waited)
                if running and (now - since) - (waited - since_waited) > self.zombie_grace:
                    self.lingering_zombies.add(pid)
                continue
            self.zombie_since.pop(pid, None)
            if s[2] != pid:  # forked, not yet in its own process group (a worker leads one): next time
                continue
            with self.lock:
                if pid in self.pidfds:
                    continue
                try:
                    fd = os.pidfd_open(pid)
                except OSError:
                    continue
                # The pid may have been reused between listing and opening: keep it only if still ours.
                again = stat(pid)
                if again is None or again[1] != self.supervisor or again[3] != s[3]:
                    os.close(fd)
                    continue
                self.pidfds[pid] = fd
                self.pgids.add(s[2])
                self.seen += 1
                self.poller.register(fd, select.POLLIN)
        self.most_zombies = max(self.most_zombies, zombies)

    def _died(self, fd):
        with self.lock:
            self.poller.unregister(fd)
            for pid, known in list(self.pidfds.items()):
                if known == fd:
                    del self.pidfds[pid]
                    self.death_of[pid] = time.monotonic()
            self.deaths.append(time.monotonic())
            os.close(fd)

    def sched_between(self, a, b):
        """The supervisor's (CPU seconds, run-queue wait seconds) between monotonic times a and b."""
        inside = [s for s in self.sched if a <= s[0] <= b]
        before = [s for s in self.sched if s[0] < a][-1:] or inside[:1]
        after = [s for s in self.sched if s[0] > b][:1] or inside[-1:]
        if not before or not after:
            return None
        return round(after[0][1] - before[0][1], 3), round(after[0][2] - before[0][2], 3)

    def live_workers(self):
        """The pids of the workers not yet seen dead."""
        with self.lock:
            return list(self.pidfds)

    def grab(self, pid):
        """A pidfd of its own for worker pid (the caller closes it), or None once it is gone."""
        with self.lock:
            fd = self.pidfds.get(pid)
            return os.dup(fd) if fd is not None else None

    def stop(self):
        self.running = False
        self.thread.join(5)
        with self.lock:
            for fd in self.pidfds.values():
                os.close(fd)
            self.pidfds.clear()
