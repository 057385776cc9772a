/// The control protocol, version 1: one JSON object per line each way, every request gets one reply.
///
///     → {"v":1,"cmd":"status"}
///     ← {"ok":true,"supervisor":{...},"workers":[...]}
///     → {"v":1,"cmd":"workers","set":16,"wait":true}
///     ← {"ok":false,"error":"16 is above max_workers (8)"}
///     → {"v":1,"cmd":"reload","wait":true}
///     ← {"ok":true,"summary":"reload complete: 8 workers replaced in 3.1s"}
///     → {"v":1,"cmd":"reload","wait":true,"progress":true}
///     ← {"progress":{"kind":"reload","total":8,"done":0,"starting":2,"settling":0,"failed":0},"summary":"rolling: 0/8 new, 2 starting, 0 settling, 0 failed"}
///       ... one such line each time the roll moves (no "ok": not the reply yet), then the reply as above.
///     → {"v":1,"cmd":"restart","worker":3}      (or "worker":"all")
///     → {"v":1,"cmd":"metrics"}
///     ← {"ok":true,"text":"# HELP hyperglass_build_info ...\n..."}   (the Prometheus text exposition)
///     → {"v":1,"cmd":"events"}
///     ← {"ok":true,"following":true}
///     ← {"event":"exited","worker":3,"pid":4242,"generation":2,"reason":"crash","level":"warning","message":"...","time":1764633600.25}
///       ... one line per pool event, until the client closes; a client that reads too slowly is dropped.
public enum ControlRequest: Equatable, Sendable {
    case ping
    case version
    case status
    case getWorkers
    /// `workers N`, `workers +N`, `workers -N`; with `wait` the reply comes once the pool has reached the count.
    case setWorkers(WorkerCountChange, wait: Bool)
    /// Re-read the configuration and roll every worker onto it; with `wait` the reply comes when the roll ended,
    /// and with `progress` too a line each time the roll moves before it.
    case reload(wait: Bool, progress: Bool = false)
    /// Replace one worker (by slot id) or all of them, `max_surge` at a time; `wait` and `progress` as for reload.
    case restart(RestartTarget, wait: Bool, progress: Bool = false)
    /// The Prometheus text exposition of the pool, as `/metrics` on `metrics_bind` serves it.
    case metrics
    /// Follow the pool's events: after the first reply the connection carries one JSON line per event.
    case events
    /// `workers auto`: end a pinned count and let the autoscaler decide again.
    case resumeAutoscaling
    /// Replace the supervisor's program in place with the binary at `path` (default: the installed one),
    /// keeping its pid and workers; with `wait` the reply comes from the new program once it took over.
    case upgrade(path: String?, wait: Bool)

    public static let protocolVersion = 1

    /// Whether a read-only (control_group) client may make this request.
    public var isReadOnly: Bool {
        switch self {
        case .ping, .version, .status, .getWorkers, .metrics, .events: return true
        case .setWorkers, .reload, .restart, .resumeAutoscaling, .upgrade: return false
        }
    }

    /// What the request asks the pool to do, and whether the reply waits for it; nil for the read-only ones.
    public var intent: (Intent, wait: Bool)? {
        switch self {
        case .ping, .version, .status, .getWorkers, .metrics, .events: return nil
        case let .setWorkers(change, wait): return (.workers(change), wait)
        case .resumeAutoscaling: return (.autoscale, false)
        case let .reload(wait, _): return (.reload, wait)
        case let .restart(.all, wait, _): return (.restart(slots: nil), wait)
        case let .restart(.worker(id), wait, _): return (.restart(slots: [id]), wait)
        // The new program answers a waiting client itself: the core's reply is a refusal, or none at all.
        case let .upgrade(path, wait): return (.upgrade(path: path, wait: wait), false)
        }
    }

    /// Whether a waiting client asked for a line at each step of the roll before the reply.
    public var followsProgress: Bool {
        switch self {
        case let .reload(wait, progress), let .restart(_, wait, progress): return wait && progress
        default: return false
        }
    }

    public var json: JSON {
        var members: [(String, JSON)] = [("v", .number(Double(ControlRequest.protocolVersion)))]
        switch self {
        case .ping: members.append(("cmd", .string("ping")))
        case .version: members.append(("cmd", .string("version")))
        case .status: members.append(("cmd", .string("status")))
        case .getWorkers: members.append(("cmd", .string("workers")))
        case .metrics: members.append(("cmd", .string("metrics")))
        case .events: members.append(("cmd", .string("events")))
        case let .setWorkers(change, wait):
            members.append(("cmd", .string("workers")))
            switch change {
            case .to(let n): members.append(("set", .number(Double(n))))
            case .by(let delta): members.append(("add", .number(Double(delta))))
            }
            if wait { members.append(("wait", .bool(true))) }
        case .resumeAutoscaling:
            members += [("cmd", .string("workers")), ("set", .string("auto"))]
        case let .reload(wait, progress):
            members.append(("cmd", .string("reload")))
            if wait { members.append(("wait", .bool(true))) }
            if progress { members.append(("progress", .bool(true))) }
        case let .upgrade(path, wait):
            members.append(("cmd", .string("upgrade")))
            if let path { members.append(("path", .string(path))) }
            if wait { members.append(("wait", .bool(true))) }
        case let .restart(target, wait, progress):
            members.append(("cmd", .string("restart")))
            switch target {
            case .all: members.append(("worker", .string("all")))
            case .worker(let id): members.append(("worker", .number(Double(id))))
            }
            if wait { members.append(("wait", .bool(true))) }
            if progress { members.append(("progress", .bool(true))) }
        }
        return .object(members)
    }

    /// Parses one request line; the error is the message for the `{"ok":false}` reply.
    public init(line: String) throws(ControlError) {
        let json: JSON
        do { json = try JSON.parse(line) } catch { throw ControlError("malformed request: \(error)") }
        guard case .object = json else { throw ControlError("a request must be a JSON object") }
        if let version = json["v"], version.int != ControlRequest.protocolVersion {
            throw ControlError("unsupported protocol version \(version.serialized); this supervisor speaks \(ControlRequest.protocolVersion)")
        }
        guard let command = json["cmd"]?.string else { throw ControlError("missing \"cmd\"") }
        switch command {
        case "ping": self = .ping
        case "version": self = .version
        case "status": self = .status
        case "metrics": self = .metrics
        case "events": self = .events
        case "workers":
            let wait = json["wait"]?.bool ?? false
            if json["set"]?.string == "auto" {
                self = .resumeAutoscaling
            } else if let set = json["set"] {
                guard let n = set.int else { throw ControlError("\"set\" must be a whole number") }
                self = .setWorkers(.to(n), wait: wait)
            } else if let add = json["add"] {
                guard let n = add.int else { throw ControlError("\"add\" must be a whole number") }
                self = .setWorkers(.by(n), wait: wait)
            } else {
                self = .getWorkers
            }
        case "reload": self = .reload(wait: json["wait"]?.bool ?? false, progress: json["progress"]?.bool ?? false)
        case "upgrade":
            if let path = json["path"], path.string == nil { throw ControlError("\"path\" must be a string") }
            self = .upgrade(path: json["path"]?.string, wait: json["wait"]?.bool ?? false)
        case "restart":
            let wait = json["wait"]?.bool ?? false
            let progress = json["progress"]?.bool ?? false
            if json["worker"]?.string == "all" {
                self = .restart(.all, wait: wait, progress: progress)
            } else if let id = json["worker"]?.int, id >= 0 {
                self = .restart(.worker(id), wait: wait, progress: progress)
            } else {
                throw ControlError("\"worker\" must be a worker id (0, 1, ...) or \"all\"")
            }
        default:
            throw ControlError("unknown command '\(command)' (ping, version, status, workers, reload, restart, upgrade, metrics, events)")
        }
    }
}

/// What a request asks of the pool, by `hyperglassctl` or by a signal that stands for one (SIGHUP, SIGTTIN,
/// SIGTTOU). The supervisor's core alone decides whether it may happen now (`Pool.refusal(of:at:)`) and
/// answers with a `Reply`, so a request means the same thing whichever way it arrives. A new command that
/// changes the pool is a case here and in `ControlRequest`, its words in hyperglassctl, and its decision in
/// the core's `Pool+Intents.swift`.
public enum Intent: Equatable, Sendable {
    /// `workers N|+N|-N`, SIGTTIN (+1), SIGTTOU (-1): the operator's count, which pins autoscaling.
    case workers(WorkerCountChange)
    /// `workers auto`: autoscaling decides the count again.
    case autoscale
    /// `reload`, SIGHUP: re-read the configuration (the shell reads it when the core says `readConfiguration`).
    case reload
    /// `restart ID|all`: replace these slots' workers (nil: every slot), one roll step at a time.
    case restart(slots: [Int]?)
    /// `upgrade [--wait] [PATH]`: replace the supervisor's program in place (the shell checks and execs it
    /// when the core says `execUpgrade`); with `wait` the new program answers.
    case upgrade(path: String?, wait: Bool)

    /// The verb in a refusal: "cannot reload: ...".
    public var verb: String {
        switch self {
        case .workers: "change the worker count"
        case .autoscale: "resume autoscaling"
        case .reload: "reload"
        case .restart: "restart"
        case .upgrade: "upgrade"
        }
    }
}

/// Which workers `restart` replaces.
public enum RestartTarget: Equatable, Sendable {
    case all
    case worker(Int)

    /// Parses the `hyperglassctl restart` argument: "all" or a worker id.
    public init?(argument: String) {
        if argument == "all" { self = .all } else if let id = Int(argument), id >= 0 { self = .worker(id) } else { return nil }
    }
}

/// A new worker count: absolute, or relative to the current one.
public enum WorkerCountChange: Equatable, Sendable {
    case to(Int)
    case by(Int)

    public func applied(to current: Int) -> Int {
        switch self {
        case .to(let n): return n
        case .by(let delta): return current + delta
        }
    }

    /// Parses the `hyperglassctl workers` argument: "16", "+2", "-1".
    public init?(argument: String) {
        if argument.hasPrefix("+"), let n = Int(argument.dropFirst()), n >= 0 { self = .by(n) }
        else if argument.hasPrefix("-"), let n = Int(argument.dropFirst()), n >= 0 { self = .by(-n) }
        else if let n = Int(argument) { self = .to(n) }
        else { return nil }
    }
}

/// A refusal, sent as `{"ok":false,"error":message}`.
public struct ControlError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Replies: `{"ok":true,...}` or `{"ok":false,"error":"..."}`.
public enum ControlReply {
    public static func success(_ members: [(String, JSON)] = []) -> JSON { .object([("ok", .bool(true))] + members) }
    public static func failure(_ message: String) -> JSON { .object([("ok", .bool(false)), ("error", .string(message))]) }
}
