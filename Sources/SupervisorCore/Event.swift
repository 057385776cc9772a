import ControlProtocol

/// Something that happened, as the shell observed it. Past tense.
public enum Event: Equatable, Sendable {
    /// The supervisor has its sockets and starts the pool.
    case started
    /// A `spawn` action succeeded: exec ran.
    case spawned(slot: Int, generation: Int, pid: Int32)
    /// A `spawn` action failed before exec (fork failed, command missing...).
    case spawnFailed(slot: Int, generation: Int, reason: String)
    /// A `spawn` action failed for want of the supervisor's resources (EMFILE, EAGAIN...): not the worker's fault.
    case spawnLimited(slot: Int, generation: Int, reason: String)
    /// waitpid reported a child's end.
    case exited(pid: Int32, status: ExitStatus)
    /// A datagram on the workers' NOTIFY_SOCKET, attributed by SCM_CREDENTIALS.
    case notified(pid: Int32, message: NotifyMessage)
    /// The deadline the core asked for (`nextDeadline`) has passed.
    case deadlineReached
    case signalReceived(Signal)
    /// A `probe` action finished.
    case probed(pid: Int32, result: ProbeResult)
    /// A `sampleAccepting` action looked at these workers' process trees in /proc.
    case acceptingSampled([Int32: AcceptingSample])
    /// Bytes of memory per worker, for `max_memory`.
    case memorySampled([Int32: UInt64])
    /// An operator's request (control socket, SIGHUP, SIGTTIN, SIGTTOU); the core answers `requester`.
    case requested(Intent, by: Requester)
    /// The configuration a `readConfiguration` action read and validated, with what the shell measured for
    /// autoscaling under it (the autoscaler it asks for, nil when the count is fixed; the memory ceiling).
    /// The core numbers the release, rolls onto it (`ReloadPlan.steps`) and answers `requester`.
    case configurationRead(ReloadPlan, autoscaler: Autoscaler?, memoryCeiling: Int?, for: Requester)
    /// A `readConfiguration` action found the configuration invalid: nothing changes.
    case configurationRejected(reason: String, for: Requester)
    /// A `checkUpgrade` action's preflight said yes: the binary at `path` (resolved) is hyperglass `newVersion`
    /// and can take over.
    case upgradeChecked(path: String, newVersion: String, for: Requester)
    /// A `checkUpgrade` was refused (by the preflight or the shell's own checks), or an `execUpgrade`'s
    /// execve failed: nothing changed.
    case upgradeFailed(reason: String, for: Requester)
    /// A connection arrived on a listener watched for load (autoscaling, `watchForLoad`).
    case loadArrived
    /// A `sampleLoad` action measured the accept queues and the workers' CPU.
    case loadSampled(LoadSample)
    /// The listeners' accept queues, looked at for a `sampleBacklog` action or before answering a status,
    /// health or `/readyz` request.
    case backlogSampled([ListenerBacklog])
}

/// A parsed sd_notify datagram: newline-separated KEY=VALUE assignments.
public struct NotifyMessage: Equatable, Sendable {
    public var ready = false
    public var stopping = false
    public var watchdog = false
    /// WATCHDOG=trigger: the worker asks to be treated as hung.
    public var watchdogTrigger = false
    /// WATCHDOG_USEC=: the worker changes its own watchdog interval.
    public var watchdogInterval: Duration? = nil
    public var status: String? = nil

    public init(ready: Bool = false, stopping: Bool = false, watchdog: Bool = false, watchdogTrigger: Bool = false,
                watchdogInterval: Duration? = nil, status: String? = nil) {
        self.ready = ready
        self.stopping = stopping
        self.watchdog = watchdog
        self.watchdogTrigger = watchdogTrigger
        self.watchdogInterval = watchdogInterval
        self.status = status
    }

    /// Unknown assignments are ignored, as systemd does.
    public init(parsing text: String) {
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq]
            let value = line[line.index(after: eq)...]
            switch key {
            case "READY": ready = ready || value == "1"
            case "STOPPING": stopping = stopping || value == "1"
            case "WATCHDOG":
                watchdog = watchdog || value == "1"
                watchdogTrigger = watchdogTrigger || value == "trigger"
            case "WATCHDOG_USEC":
                if let usec = Int64(value), usec > 0, usec < Int64.max / 1000 { watchdogInterval = .microseconds(usec) }
            case "STATUS": status = String(value.prefix(200))
            default: break
            }
        }
    }
}
