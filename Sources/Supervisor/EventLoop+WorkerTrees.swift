import CHyperglass
import Glibc
import SupervisorCore

/// A worker's end is its whole tree's end (WorkerTrees.swift): the shell's side of it.
extension EventLoop {
    /// epoll data for a worker cgroup's `cgroup.events` while its tree is being ended: this bit plus its fd.
    static let treeTag: UInt64 = 1 << 45
    /// kernfs files signal a change as EPOLLPRI (cgroup v2 docs: "file modified events").
    private static let epollPri: UInt32 = 0x002

    /// The worker `pid` was reaped: kill what it left. True when its exit must wait for its cgroup to
    /// empty (the `exited` event then comes from `treeChanged`).
    func holdExitUntilTreeEnds(_ pid: Int32, _ status: ExitStatus) -> Bool {
        let trees = spawner.trees
        guard let cgroups = trees.cgroups else {
            for line in trees.strays.sweep(workers: unreaped, worker: pid, grace: pool.policy.gracefulTimeout, at: Sys.now) { log(.warning, line) }
            return false
        }
        guard let (directory, fd) = cgroups.endTree(of: pid) else { return false }
        do {
            try Epoll.add(epoll, fd, EventLoop.epollPri, EventLoop.treeTag | UInt64(UInt32(bitPattern: fd)))
        } catch {
            log(.error, "worker pid \(pid): cannot watch \(directory)/cgroup.events: \(error); counting it as gone now")
            Sys.close(fd)
            return false
        }
        trees.ending[fd] = (pid, status, directory)
        return true
    }

    /// A worker's SIGKILL that was the kernel's OOM killer becomes `.oomKilled` (read before its cgroup goes).
    func namedExit(of pid: Int32, _ exit: ExitStatus) -> ExitStatus {
        guard exit == .signaled(SIGKILL) else { return exit }
        let trees = spawner.trees
        let cgroup = trees.cgroups.flatMap { $0.controllers.contains("memory") ? $0.directory(of: pid) : nil }
        return trees.oom.wasOomKilled(pid, cgroup: cgroup) ? .oomKilled : exit
    }

    /// A cgroup being emptied changed: once empty, the worker's exit reaches the pool.
    func treeChanged(_ fd: Int32) {
        let trees = spawner.trees
        guard let ending = trees.ending[fd], let cgroups = trees.cgroups else { return }
        Epoll.remove(epoll, fd)
        guard cgroups.treeChanged(ending.directory, eventsFD: fd) else {
            try? Epoll.add(epoll, fd, EventLoop.epollPri, EventLoop.treeTag | UInt64(UInt32(bitPattern: fd)))
            return
        }
        trees.ending[fd] = nil
        dispatch(.exited(pid: ending.pid, status: ending.status))
    }

    /// A child whose exec failed: its cgroup is empty; remove it.
    func discardTree(of pid: Int32) {
        if let (_, fd) = spawner.trees.cgroups?.endTree(of: pid) { Sys.close(fd) }  // removed at exit
    }

    /// At exit, with every worker gone: no cgroup, no stray, nothing we started is left.
    func endAllTrees() {
        let trees = spawner.trees
        for fd in trees.ending.keys { Sys.close(fd) }
        trees.ending = [:]
        trees.cgroups?.removeAll()
        for line in trees.strays.killAll() { log(.warning, line) }
    }
}
