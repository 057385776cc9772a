import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// The handover of `hyperglassctl upgrade`: the running image writes the pool's state into a sealed memfd
/// and execs the new binary in its own process, so systemd keeps its main pid and every worker keeps its
/// parent (PR_SET_PDEATHSIG fires when the forking *thread* ends, and a single-threaded execve keeps it).
/// The core admits the request (`Pool.refusal(of: .upgrade)`: not while starting, rolling, draining or
/// stopping, nor while another is prepared), the loop runs the preflight without waiting for it
/// (EventLoop+UpgradeCheck.swift), and once it said yes the core asks again whether the pool is at rest and
/// then for `execUpgrade`; only the checks here may still refuse, and once execve is called it either
/// replaces us or fails and we carry on. The new image's side is Takeover.swift.
extension EventLoop {
    /// The environment variable naming the memfd that holds the state, for the new image.
    static let stateFDVariable = "HYPERGLASS_UPGRADE_STATE_FD"

    /// The binary to check and exec: the one asked for, or the installed one; absolute.
    func upgradeTarget(_ requested: String?) -> Result<String, ControlError> {
        guard let path = requested ?? UpgradeCheck.installedPath() else {
            return .failure(ControlError("cannot upgrade: cannot tell where the installed hyperglass is; name it: hyperglassctl upgrade /usr/bin/hyperglass"))
        }
        guard path.hasPrefix("/") else { return .failure(ControlError("cannot upgrade: '\(path)' is not an absolute path")) }
        return .success(path)
    }

    /// What only the shell can see that forbids the handover now; asked before the check and again before the exec.
    func upgradeBlocker() -> String? {
        guard spawns.queued.isEmpty, spawns.inFlight.isEmpty else { return "cannot upgrade now: a worker is starting; try again in a moment" }
        // The new image loads the configuration from disk and takes it as the one the workers run.
        do {
            let onDisk = try Configuration.load(reloader.invocation, environment: reloader.environment).settings
            if onDisk != pool.releases.inEffect {
                return "cannot upgrade: the configuration on disk differs from the one the workers run; 'hyperglassctl reload' first, then upgrade"
            }
        } catch {
            return "cannot upgrade: the configuration on disk does not load: \(error)"
        }
        return nil
    }

    /// `execUpgrade`: hands over and execs; returns only when it could not, with why (the core answers the
    /// client). On success the reply is the new image's to give (`--wait`), or was sent just before the exec.
    func upgrade(to path: String, newVersion: String, wait: Bool, requester fd: Int32?) -> String {
        // The client waited for the check's answer; it may have gone meanwhile, and its fd be another's now.
        let requester = fd.flatMap { fd in lateRequesters[fd].flatMap { expected in control.clients[fd] === expected ? fd : nil } }
        // Counted before the configuration is read again: its reader thread (config_read.c) may still be
        // ending just after. It forks nothing, so execve ending it costs no child its PDEATHSIG.
        let threads = hg_thread_count()
        guard threads == 1 else {
            // execve would end the other threads, and children forked by them would get their PDEATHSIG.
            return "cannot upgrade: \(threads) threads run in the supervisor, not 1; restart the service instead"
        }
        // The check took seconds: a worker may be starting again, or the configuration on disk have changed.
        if let blocker = upgradeBlocker() { return blocker }
        return handOver(to: path, newVersion: newVersion, waiter: wait ? requester : nil, requester: requester)
    }

    private func handOver(to path: String, newVersion: String, waiter: Int32?, requester: Int32?) -> String {
        let handoverAt = Sys.now
        let carried = workerSockets.carried
        var state = UpgradeState(fromVersion: version, handoverAt: handoverAt, pool: pool.snapshot,
                                 control: CarriedControl(fd: control.fd, path: control.path),
                                 workerSocketDirectory: workerSockets.directory.path, workerSocketsStarted: carried.started)
        state.startedAt = self.startedAt
        state.pinned = pool.autoscaler?.pinned
        state.listeners = listeners.map { CarriedListener(fd: $0.fd, address: $0.address, ownedPath: $0.ownedPath) }
        state.metricsListeners = (http?.fds ?? []).map { CarriedListener(fd: $0, address: http?.address ?? "", ownedPath: nil) }
        state.workerSockets = carried.workers.map {
            CarriedWorkerSockets(pid: $0.pid, startTime: hg_process_start_time($0.pid), notifyFD: $0.notifyFD,
                                 notifyName: $0.notifyName, healthName: $0.healthName)
        }
        state.waiterFD = waiter
        // A probe connected just before the exec sends its request to the new image.
        state.httpClients = http?.unanswered ?? []
        // Every other open connection goes along, with what it sent: a request made around the exec is
        // answered by the new image. (One with a half-written reply or a pending --wait is closed instead.)
        state.clients = control.clients.values.sorted { $0.fd < $1.fd }.compactMap { client in
            let follower = followers[client.fd] === client
            guard client.fd != requester, client.pendingOutput == 0, !client.closeAfterFlush, client.awaitUntil == nil || follower else { return nil }
            return CarriedClient(fd: client.fd, follower: follower, unread: client.unconsumedInput)
        }
        let text = state.encoded()
        let memfd = text.withCString { hg_sealed_memfd("hyperglass-state", $0, strlen($0)) }
        guard memfd >= 0 else { return "cannot upgrade: \(SystemError(operation: "memfd_create for the state", errno: errno))" }
        if waiter == nil, let requester {
            control.reply(to: requester, ControlReply.success([("summary", .string("upgrading in place to hyperglass \(newVersion) (\(path))"))]),
                          close: true, at: Sys.now)
        }
        log(.notice, "upgrading in place to hyperglass \(newVersion) (\(path)): \(state.pool.workers.count) workers carried over")
        // systemd hears the reload start; MONOTONIC_USEC lets a newer systemd tell this reload from a later one.
        notifier.send([.reloading(at: Sys.now), .status("upgrading in place to hyperglass \(newVersion)")])
        let fds = state.carriedFDs + [memfd]
        for fd in fds { _ = hg_clear_cloexec(fd) }
        let environment = Sys.environment().filter { !$0.hasPrefix(EventLoop.stateFDVariable + "=") } + ["\(EventLoop.stateFDVariable)=\(memfd)"]
        let arguments = [path] + CommandLine.arguments.dropFirst()
        // Blocked signals stay blocked across execve (the new image's signalfd reads what is pending);
        // SIGPIPE stays ignored; nothing else has a handler.
        let failure = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                execve(path, argv, envp)
                return errno
            }
        }
        // Still here: nothing was replaced. Carry on exactly as before.
        for fd in fds where fd != memfd { _ = hg_set_cloexec(fd) }
        Sys.close(memfd)
        let reason = "upgrade failed: cannot execute \(path): \(SystemError(operation: "execve", errno: failure)); carrying on as hyperglass \(version)"
        notifier.send([.ready, .status(reason)])
        return reason
    }
}
