import CHyperglass
import Glibc
import SupervisorCore

/// The upgrade's preflight as one more child of the loop, never waited for: its output pipe is in epoll
/// (like a spawn's exec report), its exit comes through the one reaper (`reapChildren`), its timeout is
/// one more deadline in `armTimer`. Pings, status, reaping, restarts and systemd's watchdog go on while
/// it runs; the core hears `upgradeChecked` or `upgradeFailed` once both its output and its process have
/// ended, or at the timeout, when its process group is killed (and the check later reaped by its pid).
extension EventLoop {
    /// epoll data for the check's output pipe: this bit plus its fd.
    static let upgradeCheckTag: UInt64 = 1 << 39

    /// `checkUpgrade`: what only the shell can refuse, then the check started; an event only when it is refused now.
    func startUpgradeCheck(_ requested: String?, for requester: Requester) -> Event? {
        precondition(upgradeCheck == nil, "the core admits one upgrade at a time")
        let path: String
        switch upgradeTarget(requested) {
        case .failure(let error): return .upgradeFailed(reason: error.message, for: requester)
        case .success(let resolved): path = resolved
        }
        if let blocker = upgradeBlocker() { return .upgradeFailed(reason: blocker, for: requester) }
        switch UpgradeCheck.start(path, startArguments: UpgradeCheck.startArguments, for: requester, at: Sys.now) {
        case .failure(let error): return .upgradeFailed(reason: error.message, for: requester)
        case .success(let check):
            upgradeCheck = check
            do {
                try Epoll.add(epoll, check.outputFD, HG_EPOLLIN, EventLoop.upgradeCheckTag | UInt64(UInt32(bitPattern: check.outputFD)))
            } catch {
                endUpgradeCheck()
                return .upgradeFailed(reason: "cannot upgrade: cannot watch \(path) upgrade-check's output: \(error)", for: requester)
            }
            log(.info, "upgrade: checking \(path) (pid \(check.pid)); the supervisor serves meanwhile")
        }
        return nil
    }

    /// The check's output pipe is readable: keep the first `outputLimit` bytes, note its end.
    func upgradeCheckReadable(_ fd: Int32) {
        guard var check = upgradeCheck, check.outputFD == fd else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Bounded per wake-up: a check that writes without end cannot hold the loop (epoll wakes us again).
        reading: for _ in 0..<16 {
            switch buffer.withUnsafeMutableBytes({ Sys.read(fd, $0) }) {
            case .bytes(let n):
                check.output += buffer[..<min(n, max(0, UpgradeCheck.outputLimit - check.output.count))]
                // Nothing past the limit is kept: the pipe is closed, and a check that writes without end gets
                // EPIPE (or dies of SIGPIPE) rather than keeping one of our CPUs busy reading it until the timeout.
                if check.output.count >= UpgradeCheck.outputLimit {
                    Sys.close(fd)
                    check.outputFD = -1
                    break reading
                }
            case .wouldBlock: break reading
            case .endOfFile, .failed:
                Sys.close(fd)  // also leaves the epoll set
                check.outputFD = -1
                break reading
            }
        }
        upgradeCheck = check
        if check.isDone { upgradeCheckAnswered() }
    }

    /// Called by the reaper for every reaped pid: true when it was a check (this one, or one ended earlier).
    func upgradeCheckReaped(_ pid: Int32, _ exit: ExitStatus) -> Bool {
        if endedChecks.remove(pid) != nil || checkLeftovers.remove(pid) != nil {
            killLeftovers(ofCheck: pid)
            return true
        }
        guard var check = upgradeCheck, check.pid == pid else { return false }
        check.exit = exit
        // Before reading: a leftover holding the pipe dies, and what the check wrote is judged at its end of file.
        killLeftovers(ofCheck: pid)
        upgradeCheck = check
        // What it wrote before exiting is in the pipe now: read it before judging.
        if check.outputFD >= 0 { upgradeCheckReadable(check.outputFD) } else if check.isDone { upgradeCheckAnswered() }
        return true
    }

    /// What a check started outside its process group (`setsid`, a double fork) was reparented to us, the
    /// subreaper, when its parent ended: by the check's reaping, every child of ours that is neither a worker,
    /// nor in a worker's cgroup, nor a worker's stray being ended already (Strays.swift) is such a leftover,
    /// and is killed (no grace: the check is not serving anyone). Its own orphans come to us as it dies, before
    /// its reaping, which looks again (`checkLeftovers`): a chain of any depth ends, none missed by a race.
    private func killLeftovers(ofCheck pid: Int32) {
        for child in Strays.children() where !unreaped.contains(child) && !isUpgradeCheck(child) && !checkLeftovers.contains(child)
            && spawner.trees.strays.pending[child] == nil {
            guard let (state, _) = Strays.stat(child), state != "Z", spawner.trees.cgroups?.holds(child) != true else { continue }
            log(.warning, "upgrade: killing process \(child) (\(Strays.commandLine(child))), left running by an upgrade check (it ended with pid \(pid))")
            kill(child, SIGKILL)
            checkLeftovers.insert(child)
        }
    }

    /// Whether `pid` is a check not yet reaped (its process group is ended with it, as a worker's is).
    func isUpgradeCheck(_ pid: Int32) -> Bool { upgradeCheck?.pid == pid || endedChecks.contains(pid) }

    /// At the timer: a check past its deadline is killed and refused.
    func expireUpgradeCheck(at now: Instant) {
        guard let check = upgradeCheck, check.deadline <= now else { return }
        // An answer already waiting in the pipe was given in time.
        if check.outputFD >= 0 { upgradeCheckReadable(check.outputFD) }
        guard let check = upgradeCheck, !check.isDone else { return }
        log(.warning, "upgrade: \(check.path) upgrade-check (pid \(check.pid)) did not answer within \(UpgradeCheck.timeout.spoken); killing it")
        endUpgradeCheck()
        dispatch(.upgradeFailed(reason: UpgradeCheck.timedOut(check), for: check.requester))
    }

    /// `cancelUpgradeCheck`: the core abandoned the upgrade (a stop began); its answer no longer matters.
    func cancelUpgradeCheck() {
        guard let check = upgradeCheck else { return }
        log(.info, "upgrade: ending \(check.path) upgrade-check (pid \(check.pid)): the upgrade was abandoned")
        endUpgradeCheck()
    }

    /// Kills the check's process group unless it was reaped already (until then the zombie pins its pid and
    /// group id: no stranger can be hit), closes its pipe, and keeps its pid to recognise its reaping.
    private func endUpgradeCheck() {
        guard let check = upgradeCheck else { return }
        upgradeCheck = nil
        if check.outputFD >= 0 { Sys.close(check.outputFD) }
        guard check.exit == nil else { return }
        Sys.signalGroup(check.pid, SIGKILL)
        endedChecks.insert(check.pid)
    }

    /// Both the output and the process have ended: the core hears the verdict.
    private func upgradeCheckAnswered() {
        guard let check = upgradeCheck, check.isDone else { return }
        upgradeCheck = nil
        switch UpgradeCheck.verdict(of: check) {
        case .success(let version):
            log(.info, "upgrade: \(check.path) is hyperglass \(version) and can take over")
            dispatch(.upgradeChecked(path: check.path, newVersion: version, for: check.requester))
        case .failure(let error):
            dispatch(.upgradeFailed(reason: error.message, for: check.requester))
        }
    }
}
