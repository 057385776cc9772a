import CHyperglass
import Glibc
import SupervisorCore

/// Spawns that never block the loop. A `spawn` action only queues; the loop forks a few at a time
/// (at most `spawnBudget` of loop time per turn, then it serves whatever else is ready), and each
/// child's exec result comes back on a close-on-exec pipe watched by epoll: end of file is `spawned`,
/// four bytes are the errno of `spawnFailed`. Scaling to hundreds of workers thus keeps signals,
/// control requests and the systemd watchdog served within milliseconds.
struct SpawnTable {
    struct Request: Equatable {
        let slot: Int
        let generation: Int
        let release: Int
    }

    /// A forked child whose exec result has not been read yet.
    struct InFlight {
        let request: Request
        let pid: Int32
    }

    /// Spawns the pool asked for, not yet forked, oldest first.
    var queued: [Request] = []
    /// Forked children by the fd of their report pipe.
    var inFlight: [Int32: InFlight] = [:]
    /// Report fds by child pid, for a child that is reaped before its report was read.
    var reportFD: [Int32: Int32] = [:]
    /// Children whose exec failed and that were reported as `spawnFailed`: their exit is not a worker's.
    var failed: Set<Int32> = []

    /// Whether this spawn was already asked for (a deadline passing again before its result arrived).
    func contains(_ request: Request) -> Bool {
        queued.contains(request) || inFlight.values.contains { $0.request.slot == request.slot && $0.request.generation == request.generation }
    }
}

extension EventLoop {
    /// Loop time one turn may spend forking before it looks at other events again.
    static let spawnBudget: Duration = .milliseconds(2)

    func queueSpawn(slot: Int, generation: Int, release: Int) {
        let request = SpawnTable.Request(slot: slot, generation: generation, release: release)
        guard !spawns.contains(request) else { return }
        spawns.queued.append(request)
    }

    /// Forks queued spawns until the budget is spent; the rest wait for the next turn.
    func startQueuedSpawns() {
        let until = Sys.now + EventLoop.spawnBudget
        while !spawns.queued.isEmpty, Sys.now < until {
            let request = spawns.queued.removeFirst()
            // A scale-down, a stop or an aborted roll may have come since the pool asked.
            guard pool.wantsSpawn(slot: request.slot, generation: request.generation) else { continue }
            do {
                let started = try spawner.spawn(slot: request.slot, generation: request.generation, release: request.release,
                                                settings: pool.releases[request.release])
                unreaped.insert(started.pid)
                spawns.inFlight[started.reportFD] = SpawnTable.InFlight(request: request, pid: started.pid)
                spawns.reportFD[started.pid] = started.reportFD
                do {
                    try Epoll.add(epoll, started.reportFD, HG_EPOLLIN, EventLoop.spawnTag | UInt64(UInt32(bitPattern: started.reportFD)))
                    try Epoll.add(epoll, started.sockets.notifyFD, HG_EPOLLIN, EventLoop.notifyTag | UInt64(UInt32(bitPattern: started.sockets.notifyFD)))
                } catch {
                    log(.error, "worker \(request.slot) (pid \(started.pid)): its exec report or notifications cannot be watched: \(error)")
                }
            } catch {
                dispatch(.spawnFailed(slot: request.slot, generation: request.generation, reason: error.description))
            }
        }
    }

    /// A report pipe is readable: exec succeeded (end of file) or the child sent its errno.
    func spawnReported(_ fd: Int32) {
        guard let spawn = spawns.inFlight[fd] else { return }
        let result = hg_spawn_result(fd)
        if result < 0 { return }
        Epoll.remove(epoll, fd)
        Sys.close(fd)
        spawns.inFlight.removeValue(forKey: fd)
        spawns.reportFD.removeValue(forKey: spawn.pid)
        let request = spawn.request
        if result > 0 {
            spawns.failed.insert(spawn.pid)
            let command = pool.releases[request.release]?.command.first ?? "the worker"
            dispatch(.spawnFailed(slot: request.slot, generation: request.generation,
                                  reason: SystemError(operation: "start \(command)", errno: result).description))
            return
        }
        guard pool.wantsSpawn(slot: request.slot, generation: request.generation) else {
            // Its slot went away (scale-down, stop) while it was starting: nobody would supervise it.
            log(.info, "worker \(request.slot) (pid \(spawn.pid)) started after it was no longer wanted; stopping it")
            Sys.signalGroup(spawn.pid, SIGKILL)
            return
        }
        dispatch(.spawned(slot: request.slot, generation: request.generation, pid: spawn.pid))
    }

    /// Reads the exec report of `pid` now if it is still pending (a worker that notifies has exec'd).
    func resolveSpawn(of pid: Int32) {
        if let fd = spawns.reportFD[pid] { spawnReported(fd) }
    }

    /// Called for every reaped pid before it becomes an `exited` event; false means it was no worker.
    /// A child reaped before its report was read is resolved first (its pipe is at end of file or holds
    /// the errno now), so the pool always hears `spawned` before that worker's `exited`.
    func reapedSpawn(_ pid: Int32) -> Bool {
        if let fd = spawns.reportFD[pid] { spawnReported(fd) }
        if spawns.reportFD[pid] != nil {
            // Nothing readable although the child is gone: cannot happen with a pipe only it held open.
            preconditionFailure("the report pipe of reaped pid \(pid) is neither at end of file nor holds an errno")
        }
        return spawns.failed.remove(pid) == nil
    }
}
