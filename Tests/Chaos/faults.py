"""Random faults at a steady rate: SIGKILL of a worker, SIGSTOP/SIGCONT of a worker, SIGSTOP/SIGCONT of
the supervisor itself.

Workers are signalled through pidfds (signal.pidfd_send_signal): a worker that died and whose pid was
reused in the meantime can never be hit. The supervisor is our own child, never reaped before the end,
so its pid is safe. Every SIGSTOP is paired with a SIGCONT after a random 0.2-3 s for the supervisor,
0.1-1.5 s for a worker (or at `resume_all`).
"""
import os, random, signal, threading, time

KINDS = ("worker_kill", "worker_stop", "supervisor_stop")


class Injector:
    def __init__(self, supervisor_pid, tracker, seed, stop_range=(0.2, 3.0), worker_stop_range=(0.1, 1.5),
                 supervisor_every=(2.0, 6.0), weights=(0.5, 0.5)):
        self.supervisor = supervisor_pid
        self.tracker = tracker
        self.random = random.Random(seed)
        self.stop_range = stop_range  # the supervisor's
        self.worker_stop_range = worker_stop_range  # a third of them outlast a 1 s worker watchdog
        self.supervisor_every = supervisor_every  # running time between two supervisor stops
        self.weights = weights  # worker_kill : worker_stop
        self.counts = dict.fromkeys(KINDS, 0)
        self.skipped = 0  # worker faults with no live, running worker to hit
        self.kills = []  # monotonic times of our SIGKILLs
        self.stopped_workers = {}  # pid -> (pidfd, monotonic time to SIGCONT)
        self.ever_stopped = set()  # pids we ever SIGSTOPped (a watchdog abort of any other is suspect)
        self.supervisor_stops = []  # (monotonic start, monotonic end)
        self.supervisor_cont_at = None  # monotonic time to SIGCONT the supervisor, while it is stopped
        self.supervisor_resumed = time.monotonic()
        self.next_supervisor_stop = time.monotonic() + self.random.uniform(*supervisor_every)
        self.lock = threading.Lock()
        self.last_fault = None

    def running(self):
        """(the supervisor runs now, when it last resumed): for the tracker's zombie grace."""
        with self.lock:
            return self.supervisor_cont_at is None, self.supervisor_resumed

    def supervisor_stopped(self):
        with self.lock:
            return self.supervisor_cont_at is not None

    def tick(self, now):
        """Sends every SIGCONT that is due, and SIGSTOPs the supervisor when its time has come."""
        for pid, (fd, at) in list(self.stopped_workers.items()):
            if at <= now:
                self._signal_fd(fd, signal.SIGCONT)
                os.close(fd)
                del self.stopped_workers[pid]
        with self.lock:
            due = self.supervisor_cont_at is not None and self.supervisor_cont_at <= now
        if due:
            self._resume_supervisor()
        with self.lock:
            stop_due = self.supervisor_cont_at is None and now >= self.next_supervisor_stop
        if stop_due:
            start = time.monotonic()
            os.kill(self.supervisor, signal.SIGSTOP)
            with self.lock:
                self.supervisor_cont_at = start + self.random.uniform(*self.stop_range)
                self.supervisor_stops.append([start, None])
            self._count("supervisor_stop")

    def inject(self, now):
        """One worker fault: SIGKILL or SIGSTOP of a random live worker that is not stopped already."""
        candidates = [pid for pid in self.tracker.live_workers() if pid not in self.stopped_workers]
        if not candidates:
            self.skipped += 1
            return
        pid = self.random.choice(candidates)
        fd = self.tracker.grab(pid)
        if fd is None:
            self.skipped += 1
            return
        if self.random.random() < self.weights[0] / sum(self.weights):
            if self._signal_fd(fd, signal.SIGKILL):
                self.kills.append(time.monotonic())
                self._count("worker_kill")
            else:
                self.skipped += 1
            os.close(fd)
        elif self._signal_fd(fd, signal.SIGSTOP):
            self.stopped_workers[pid] = (fd, now + self.random.uniform(*self.worker_stop_range))
            self.ever_stopped.add(pid)
            self._count("worker_stop")
        else:
            self.skipped += 1
            os.close(fd)

    def resume_all(self):
        """SIGCONT to everything we stopped, now: the end of the chaos."""
        for pid, (fd, _) in list(self.stopped_workers.items()):
            self._signal_fd(fd, signal.SIGCONT)
            os.close(fd)
        self.stopped_workers.clear()
        if self.supervisor_stopped():
            self._resume_supervisor()

    def _resume_supervisor(self):
        os.kill(self.supervisor, signal.SIGCONT)
        end = time.monotonic()
        with self.lock:
            self.supervisor_stops[-1][1] = end
            self.supervisor_cont_at = None
            self.supervisor_resumed = end
            self.next_supervisor_stop = end + self.random.uniform(*self.supervisor_every)
        self.last_fault = end

    def _count(self, kind):
        self.counts[kind] += 1
        self.last_fault = time.monotonic()

    @staticmethod
    def _signal_fd(fd, signo):
        try:
            signal.pidfd_send_signal(fd, signo)
            return True
        except ProcessLookupError:  # it exited (not yet reaped, or gone): nothing to do
            return False

    @property
    def total(self):
        return sum(self.counts.values())
