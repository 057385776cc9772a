import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// The new image's side of `hyperglassctl upgrade` (the old one's is Upgrade.swift): read the state the
/// old image left in a sealed memfd, adopt its fds and workers, and carry on as the same process.
/// Anything wrong here exits 1: the workers then get their PDEATHSIG and the service manager restarts
/// the service, which is the safe way out of a half-known pool.
enum Takeover {
    /// The handed-over state, when this process was exec'd by an upgrade; nil for an ordinary start.
    static func pendingState() -> UpgradeState? {
        guard let value = getenv(EventLoop.stateFDVariable) else { return nil }
        let text = String(cString: value)
        unsetenv(EventLoop.stateFDVariable)  // not for the workers, nor for a later upgrade
        guard let fd = Int32(text), fd >= 0 else { fail("cannot take over: \(EventLoop.stateFDVariable)='\(text)' is not an fd", code: 1) }
        guard hg_is_write_sealed(fd) == 1 else {
            fail("cannot take over: fd \(fd) (\(EventLoop.stateFDVariable)) is not a sealed memfd; exiting so the service restarts", code: 1)
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        Sys.close(fd)
        do {
            return try UpgradeState.decode(String(decoding: bytes, as: UTF8.self))
        } catch {
            fail("cannot take over: \(error); exiting so the service restarts", code: 1)
        }
    }

    static func run(_ invocation: Invocation, _ state: UpgradeState) -> Int32 {
        // The carried fds go back to close-on-exec at once: no worker may inherit them.
        for fd in state.carriedFDs { _ = hg_set_cloexec(fd) }
        let environment = Sys.environmentDictionary()
        let loaded = Start.loadConfiguration(invocation, environment: environment, failing: "cannot take over: ")
        // The same limits as at start: the open-file limit raised (already, by the first program) and the count capped.
        let limits = ProcessLimits.measure()
        let settings = limits.capped(loaded.settings).settings
        let cpus = CgroupLimits.cpuBudget().cpus
        let log = Log(verbose: settings.debug)
        let notifier = SystemdNotifier()
        do {
            let listeners = try state.listeners.map { carried throws(SystemError) in
                Listener(fd: carried.fd, address: carried.address, owned: try carried.ownedPath.map { path throws(SystemError) in
                    let slash = path.lastIndex(of: "/")
                    let directory = try SocketDirectory.open(slash.map { String(path[..<$0]) } ?? ".", createMode: nil, purpose: "unix:\(path)")
                    return (directory, slash.map { String(path[path.index(after: $0)...]) } ?? path)
                })
            }
            // metrics_bind as the first program had it (the preflight checked the configuration is unchanged).
            let carriedMetrics = state.metricsListeners.map(\.fd)
            let http: HTTPEndpoint?
            if settings.metricsBind != nil, !carriedMetrics.isEmpty {
                http = HTTPEndpoint(adopting: carriedMetrics, address: state.metricsListeners[0].address)
            } else {
                for fd in carriedMetrics { Sys.close(fd) }
                http = try settings.metricsBind.map { address throws(SystemError) in try HTTPEndpoint(bind: address) }
            }
            let control = try ControlServer(adopting: state.control.fd, path: state.control.path, group: settings.controlGroup)
            let workerSockets = try WorkerSockets(adopting: state.workerSocketDirectory, in: control.directory, started: state.workerSocketsStarted)
            let policy = PoolPolicy(settings: settings, systemdWatchdog: notifier.watchdog)
            var pool = Pool(restoring: state.pool, policy: policy, at: Sys.now, seed: UInt64(getpid()) &* 0x9E37_79B9 ^ hg_monotonic_ns(),
                            autoscaler: Autoscaler(settings: settings, onlineCPUs: cpus),
                            memoryCeiling: LoadSampler.memoryCeiling(maxMemory: settings.health.maxMemory), pinned: state.pinned)
            var kept: [Int32: Int32] = [:]  // pid → notify fd
            var lost: [Action] = []
            for carried in state.workerSockets {
                // Our unreaped child cannot have been replaced (its zombie holds the pid), but check: a stranger is never adopted.
                if pool.workers[carried.pid] != nil, carried.startTime != 0, hg_process_start_time(carried.pid) == carried.startTime {
                    workerSockets.adopt(pid: carried.pid, notifyFD: carried.notifyFD, notifyName: carried.notifyName, healthName: carried.healthName)
                    kept[carried.pid] = carried.notifyFD
                } else {
                    Sys.close(carried.notifyFD)
                    workerSockets.directory.remove(carried.notifyName)
                    if let name = carried.healthName { workerSockets.directory.remove(name) }
                    lost += pool.forget(pid: carried.pid, at: Sys.now)
                }
            }
            for pid in pool.workers.keys where kept[pid] == nil { lost += pool.forget(pid: pid, at: Sys.now) }
            let spawner = Spawner(listenerFDs: listeners.map(\.fd), sockets: workerSockets, inherited: Sys.environment(),
                                  trees: WorkerTrees(cgroups: WorkerCgroups.resume(workers: Set(kept.keys))))
            let reloader = Reloader(invocation: invocation, environment: environment, onlineCPUs: cpus, limits: limits,
                                    startedFrom: loaded.file)
            _ = hg_set_child_subreaper()
            let loop = try EventLoop(pool: pool, spawner: spawner, reloader: reloader, listeners: listeners, notifier: notifier,
                                     workerSockets: workerSockets, control: control, log: log, http: http)
            loop.adopt(workers: kept)
            if let startedAt = state.startedAt {
                // Uptime and process_start_time_seconds go on from the first start, as the counters do.
                loop.collector.startTimeSeconds -= (Sys.now - startedAt).seconds
                loop.startedAt = startedAt
            }
            loop.adopt(httpClients: state.httpClients)
            for client in state.clients {
                guard let connection = control.adoptClient(client.fd, unread: client.unread, at: Sys.now) else { continue }
                if client.follower { _ = loop.follow(from: connection.fd) }
            }
            let took = Sys.now - state.handoverAt
            let summary = "upgraded from \(state.fromVersion) to \(version) in \(took.nanoseconds / 1_000_000) ms: pid \(getpid()) kept, \(kept.count) of \(state.pool.workers.count) workers kept"
            // WATCHDOG=1 too: the pool's next ping is an interval from now, and upgrades in a row must not
            // keep pushing it past systemd's WatchdogSec (they did: 8 upgrades 1 s apart, then SIGABRT).
            notifier.send([.mainPID(getpid()), .ready] + (notifier.watchdog == nil ? [] : [.watchdog]) + [.status(summary)])
            loop.report(PoolEvent(.upgraded, .notice, summary, duration: took))
            for case let .report(event) in lost { loop.report(event) }
            if let waiter = state.waiterFD { answer(waiter, ControlReply.success([("summary", .string(summary))])) }
            return loop.run(resuming: true)
        } catch {
            log(.error, "cannot take over: \(error); exiting so the service restarts")
            if let waiter = state.waiterFD { answer(waiter, ControlReply.failure("the new program could not take over: \(error)")) }
            return 1
        }
    }

    /// The `upgrade --wait` client's reply: one short line, written while it waits to read, then closed.
    private static func answer(_ fd: Int32, _ reply: JSON) {
        let line = Array((reply.serialized + "\n").utf8)
        _ = line.withUnsafeBytes { Sys.send(fd, $0) }
        Sys.close(fd)
    }
}

extension EventLoop {
    /// Workers handed over by the old image: ours to signal and reap, their notify sockets watched again.
    func adopt(workers: [Int32: Int32]) {
        for (pid, notifyFD) in workers {
            unreaped.insert(pid)
            do {
                try Epoll.add(epoll, notifyFD, HG_EPOLLIN, EventLoop.notifyTag | UInt64(UInt32(bitPattern: notifyFD)))
            } catch {
                log(.error, "worker pid \(pid): its notifications cannot be watched after the upgrade: \(error)")
            }
        }
    }
}
