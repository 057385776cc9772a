import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// `hyperglass start`: set up sockets and the pool, then hand over to the event loop.
enum Start {
    /// The configuration start reads (and an upgrade's new program, Takeover.swift); a bad one exits 78.
    static func loadConfiguration(_ invocation: Invocation, environment: [String: String], failing prefix: String = "") -> Configuration.Loaded {
        do {
            return try Configuration.load(invocation, environment: environment)
        } catch {
            fail("\(prefix)\(error)", code: 78)
        }
    }

    static func run(_ invocation: Invocation) -> Int32 {
        // Exec'd by `hyperglassctl upgrade`: take over the running pool instead (Takeover.swift).
        if let handedOver = Takeover.pendingState() { return Takeover.run(invocation, handedOver) }
        let environment = Sys.environmentDictionary()
        // First: raise the soft open-file limit; then a count the limits cannot hold is capped, said so.
        let limits = ProcessLimits.measure()
        let loaded = loadConfiguration(invocation, environment: environment)
        let (settings, capacityNote) = limits.capped(loaded.settings)
        let log = Log(verbose: settings.debug)
        // A warning when it lowers what the operator asked for; a lowered default max_workers is only information.
        if let capacityNote { log(settings.workers != loaded.settings.workers ? .warning : .info, capacityNote) }
        // The CPUs we may use (affinity, cgroup quotas), not those online: gunicorn issue 2028.
        let cpus = CgroupLimits.cpuBudget().cpus
        var desired = settings.workers.resolve(onlineCPUs: cpus, debug: settings.debug)
        if settings.capacityLimit != nil, desired > settings.maxWorkers {
            log(.warning, "workers = \(settings.workers) means \(desired) here; starting \(settings.maxWorkersInWords)")
            desired = settings.maxWorkers
        }
        guard desired <= settings.maxWorkers else {
            fail("workers: \(desired) (auto) exceed max_workers (\(settings.maxWorkers)); set workers or raise max_workers", code: 78)
        }
        let notifier = SystemdNotifier()
        // Before the sockets are bound: during a long prestart clients are refused, not left waiting.
        if !settings.prestart.isEmpty, let code = prestart(settings, notifier: notifier, log: log) { return code }
        // What an earlier supervisor, SIGKILLed, left in its cgroup would hold the addresses: end it first.
        let abandoned = WorkerCgroups.removeAbandoned()
        if abandoned > 0 { log(.warning, "killed \(abandoned) process\(abandoned == 1 ? "" : "es") left in the cgroups of a supervisor that was killed") }
        do {
            let listeners = try Listeners.inherited(environment: environment) ?? Listeners.bind(settings.bind)
            // Workers get them as systemd would (NonBlocking=no unless `nonblocking`); the supervisor never accepts on them.
            for listener in listeners where hg_set_nonblocking_to(listener.fd, settings.nonBlocking ? 1 : 0) < 0 {
                log(.warning, "cannot set \(listener.address) \(settings.nonBlocking ? "non-blocking" : "blocking"): \(String(cString: strerror(errno)))")
            }
            // Bound before the control socket, so a port in use leaves no socket file behind.
            let http = try settings.metricsBind.map { address throws(SystemError) in try HTTPEndpoint(bind: address) }
            if let http { log(.info, "metrics at http://\(http.address)/metrics (also /readyz, /livez)") }
            // The control socket's checked directory is the runtime directory; the workers' private one goes in it.
            let control = try ControlServer(path: settings.controlSocket ?? ControlSocketPath.default(environment: environment, isRoot: getuid() == 0),
                                            group: settings.controlGroup)
            let workerSockets = try WorkerSockets(in: control.directory)
            // Orphans of our workers are re-parented to us rather than to PID 1, so the reaper sees them.
            _ = hg_set_child_subreaper()
            let (cgroups, cgroupNote) = WorkerCgroups.setUp()
            log(cgroups == nil ? .info : .notice, cgroups == nil
                ? "no cgroup per worker: \(cgroupNote); what workers leave behind is found as our orphans (strays)" : cgroupNote)
            if let limit = settings.memoryMax, let why = CgroupLimits.memoryMaxUnenforceable(cgroups) {
                log(.warning, "memory_max = \(ValueParser.sizeText(limit)) cannot be enforced here: \(why); only max_memory's polling applies")
            }
            let spawner = Spawner(listenerFDs: listeners.map(\.fd), sockets: workerSockets, inherited: Sys.environment(),
                                  trees: WorkerTrees(cgroups: cgroups))
            let reloader = Reloader(invocation: invocation, environment: environment, onlineCPUs: cpus, limits: limits,
                                    startedFrom: loaded.file)
            let policy = PoolPolicy(settings: settings, systemdWatchdog: notifier.watchdog)
            let pool = Pool(desired: desired, policy: policy, seed: UInt64(getpid()) &* 0x9E37_79B9 ^ hg_monotonic_ns(),
                            autoscaler: Autoscaler(settings: settings, onlineCPUs: cpus),
                            memoryCeiling: LoadSampler.memoryCeiling(maxMemory: settings.health.maxMemory))
            let origin = environment["LISTEN_FDS"] != nil && listeners.first?.ownedPath == nil && Int32(environment["LISTEN_PID"] ?? "") == getpid()
                ? " (from systemd socket activation)" : ""
            log(.notice, "hyperglass \(version) listening on \(listeners.map(\.address).joined(separator: ", "))\(origin); starting \(desired) worker\(desired == 1 ? "" : "s"): \(settings.command.joined(separator: " "))")
            log(.info, "control socket at \(control.path)")
            let loop = try EventLoop(pool: pool, spawner: spawner, reloader: reloader, listeners: listeners, notifier: notifier,
                                     workerSockets: workerSockets, control: control, log: log, http: http)
            return loop.run()
        } catch {
            log(.error, "\(error)")
            return 1
        }
    }

    /// Runs `prestart`; nil to go on and start the workers, else the exit status to end with.
    private static func prestart(_ settings: Settings, notifier: SystemdNotifier, log: Log) -> Int32? {
        // The workers' environment (ours minus systemd's variables, plus `environment`), no sockets.
        let environment = Spawner.environment(inherited: Sys.environment(), settings: settings)
        let shown = settings.prestart.map(ValueParser.shellQuoted).joined(separator: " ")
        let reason: String
        do {
            switch try Prestart.run(settings.prestart, environment: environment, gracefulTimeout: settings.gracefulTimeout,
                                    notifier: notifier, log: log) {
            case .succeeded: return nil
            case .stopped: return 0
            case .failed(let why): reason = why
            }
        } catch {
            reason = "could not start: \(error)"
        }
        log(.error, "prestart \(shown) \(reason); no worker was started. Its output is above; fix the cause, then start again")
        notifier.send([.status("prestart failed: \(shown) \(reason)")])
        return 1
    }
}
