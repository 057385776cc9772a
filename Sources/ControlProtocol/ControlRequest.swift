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

    public static let protocolVersion = 1

    /// Whether a read-only (control_group) client may make this request.
    public var isReadOnly: Bool {
        switch self {
        case .ping, .version, .status, .getWorkers, .metrics, .events: return true
        case .setWorkers, .reload, .restart, .resumeAutoscaling: return false
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
            throw ControlError("unknown command '\(command)' (ping, version, status, workers, reload, restart, metrics, events)")
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
