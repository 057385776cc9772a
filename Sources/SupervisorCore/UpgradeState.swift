/// What a supervisor hands to the program it execs into (`hyperglassctl upgrade`): the pool's whole state
/// and the fds the new image must adopt, as versioned text in a sealed memfd. A newer binary reads every
/// older version; an older binary refuses a newer one in the preflight (`hyperglass upgrade-check`),
/// so a downgrade either works or is refused before anything changes.
///
/// Version history:
/// 1. slots, workers, release, roll serial, pinned count, listeners, control socket, worker sockets.
/// 2. adds the `/metrics` counters and histograms (`PoolCounters`), so an upgrade does not reset them.
public struct UpgradeState: Equatable, Sendable {
    /// The version this build writes.
    public static let version = 2
    /// The oldest version this build still reads.
    public static let oldestReadable = 1
    static let magic = "hyperglass-state"

    /// The version the state was written in (what `decode` read; `version` for a fresh one).
    public var formatVersion = UpgradeState.version
    /// The version of the program that wrote it ("0.1.0"), for "upgraded from 0.1.0 to 0.2.0".
    public var fromVersion: String
    /// When the old image began the handover, on the monotonic clock (it survives execve).
    public var handoverAt: Instant
    /// When the supervisor first started (uptime goes on across upgrades).
    public var startedAt: Instant? = nil
    public var pool: PoolSnapshot
    /// The autoscaler's pinned count, if an operator pinned one.
    public var pinned: Int? = nil
    public var listeners: [CarriedListener] = []
    /// `metrics_bind`'s listening sockets, so probes and scrapes are not refused during the exec.
    public var metricsListeners: [CarriedListener] = []
    public var control: CarriedControl
    /// The workers' private socket directory (it stays; its path is reopened and checked again).
    public var workerSocketDirectory: String
    /// How many workers were started, so socket names stay unique after the upgrade.
    public var workerSocketsStarted: Int
    public var workerSockets: [CarriedWorkerSockets] = []
    /// The `hyperglassctl upgrade --wait` connection the new image answers, if any.
    public var waiterFD: Int32? = nil
    /// Open control connections, so a request sent around the exec is answered by the new image.
    public var clients: [CarriedClient] = []
    /// Open metrics_bind connections not answered yet (a probe whose request comes just after the exec).
    public var httpClients: [CarriedHTTPClient] = []

    public init(fromVersion: String, handoverAt: Instant, pool: PoolSnapshot, control: CarriedControl,
                workerSocketDirectory: String, workerSocketsStarted: Int) {
        self.fromVersion = fromVersion
        self.handoverAt = handoverAt
        self.pool = pool
        self.control = control
        self.workerSocketDirectory = workerSocketDirectory
        self.workerSocketsStarted = workerSocketsStarted
    }

    /// Every fd the new image adopts: what must survive execve (close-on-exec cleared on exactly these).
    public var carriedFDs: [Int32] {
        listeners.map(\.fd) + metricsListeners.map(\.fd) + [control.fd] + workerSockets.map(\.notifyFD) + (waiterFD.map { [$0] } ?? []) + clients.map(\.fd)
            + httpClients.map(\.fd)
    }
}

/// A listening socket handed over: its fd, how logs show it, and the socket file we own, if any.
public struct CarriedListener: Equatable, Sendable {
    public var fd: Int32
    public var address: String
    public var ownedPath: String?
    public init(fd: Int32, address: String, ownedPath: String?) {
        self.fd = fd
        self.address = address
        self.ownedPath = ownedPath
    }
}

/// The control socket's listening fd: clients that connect during the exec wait in its backlog.
public struct CarriedControl: Equatable, Sendable {
    public var fd: Int32
    public var path: String
    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }
}

/// A control connection handed over with what it sent that was not answered yet.
public struct CarriedClient: Equatable, Sendable {
    public var fd: Int32
    /// It follows `hyperglassctl events`: the new image keeps streaming to it (the upgrade event first).
    public var follower: Bool
    public var unread: [UInt8]
    public init(fd: Int32, follower: Bool, unread: [UInt8]) {
        self.fd = fd
        self.follower = follower
        self.unread = unread
    }
}

/// A metrics_bind connection whose request is not (wholly) in yet: what it sent so far, and when it was
/// accepted (its deadlines run from then, not from the exec).
public struct CarriedHTTPClient: Equatable, Sendable {
    public var fd: Int32
    public var acceptedAt: Instant
    public var unread: [UInt8]
    public init(fd: Int32, acceptedAt: Instant, unread: [UInt8]) {
        self.fd = fd
        self.acceptedAt = acceptedAt
        self.unread = unread
    }
}

/// One live worker's notify socket (and the name of its health socket), and who the worker is:
/// `startTime` (field 22 of /proc/PID/stat) tells the same process from a pid reused in the gap.
public struct CarriedWorkerSockets: Equatable, Sendable {
    public var pid: Int32
    public var startTime: UInt64
    public var notifyFD: Int32
    public var notifyName: String
    public var healthName: String?
    public init(pid: Int32, startTime: UInt64, notifyFD: Int32, notifyName: String, healthName: String?) {
        self.pid = pid
        self.startTime = startTime
        self.notifyFD = notifyFD
        self.notifyName = notifyName
        self.healthName = healthName
    }
}

/// Why a state could not be read; each message says what the operator can do.
public enum UpgradeStateError: Error, Equatable, CustomStringConvertible {
    case notAState
    case newer(version: Int)
    case older(version: Int)
    case malformed(line: Int, String)

    public var description: String {
        switch self {
        case .notAState: "not a hyperglass state (no '\(UpgradeState.magic) N' first line)"
        case .newer(let version):
            "state version \(version) is newer than this build reads (\(UpgradeState.oldestReadable)-\(UpgradeState.version)); upgrade to a newer build instead, or restart the service"
        case .older(let version):
            "state version \(version) is older than this build reads (\(UpgradeState.oldestReadable)-\(UpgradeState.version)); restart the service instead"
        case .malformed(let line, let why): "state line \(line): \(why)"
        }
    }
}

// MARK: - Text form: one record a line, `kind key=value ...`, values percent-escaped.

extension UpgradeState {
    /// Whether this build can take over a supervisor offering `version` (the preflight's question).
    public static func canRead(_ version: Int) -> UpgradeStateError? {
        if version > UpgradeState.version { return .newer(version: version) }
        if version < UpgradeState.oldestReadable { return .older(version: version) }
        return nil
    }

    /// The state as text, in `version` (older versions leave out what they did not have).
    public func encoded(as version: Int = UpgradeState.version) -> String {
        precondition((UpgradeState.oldestReadable...UpgradeState.version).contains(version), "no such state version \(version)")
        var lines = ["\(UpgradeState.magic) \(version)"]
        func record(_ kind: String, _ fields: [(String, String?)]) {
            lines.append(([kind] + fields.compactMap { key, value in value.map { "\(key)=\(StateText.escape($0))" } }).joined(separator: " "))
        }
        record("from", [("version", fromVersion), ("handover", String(handoverAt.nanoseconds)),
                        ("started", startedAt.map { String($0.nanoseconds) })])
        record("pool", [("release", String(pool.release)), ("rollSerial", String(pool.rollSerial)), ("pinned", pinned.map(String.init))])
        for slot in pool.slots {
            record("slot", [("id", String(slot.id)), ("pid", slot.pid.map { String($0) }), ("generation", String(slot.generation)),
                            ("asked", String(slot.askedGeneration)), ("release", String(slot.release)), ("restartAt", slot.restartAt.map { String($0.nanoseconds) }),
                            ("failures", String(slot.failures)), ("restarts", String(slot.restarts)),
                            ("lastExit", slot.lastExit.map(StateText.exit)), ("lastFailure", slot.lastFailure),
                            ("waiting", slot.waitingForResources ? "1" : nil)])
        }
        if let roll = pool.lastRoll {
            record("lastRoll", [("id", String(roll.id)), ("kind", roll.kind.rawValue), ("succeeded", String(roll.succeeded)),
                                ("summary", roll.summary), ("note", roll.note)])
        }
        for (slot, generation) in pool.retiredGenerations.sorted(by: { $0.key < $1.key }) {
            record("retired", [("slot", String(slot)), ("generation", String(generation))])
        }
        for worker in pool.workers {
            record("worker", [("pid", String(worker.pid)), ("slot", String(worker.slot)), ("generation", String(worker.generation)),
                              ("release", String(worker.release)), ("startedAt", String(worker.startedAt.nanoseconds)),
                              ("readyAt", worker.readyAt.map { String($0.nanoseconds) }), ("evidence", worker.readiness.evidence),
                              ("status", worker.status), ("watchdogUsec", worker.health.watchdogInterval.map { String($0.nanoseconds / 1000) }),
                              ("lastWatchdogAt", worker.health.lastWatchdogAt.map { String($0.nanoseconds) })])
        }
        for listener in listeners {
            record("listener", [("fd", String(listener.fd)), ("address", listener.address), ("owned", listener.ownedPath)])
        }
        for listener in metricsListeners {
            record("metrics", [("fd", String(listener.fd)), ("address", listener.address)])
        }
        record("control", [("fd", String(control.fd)), ("path", control.path), ("waiter", waiterFD.map { String($0) })])
        for client in clients {
            record("client", [("fd", String(client.fd)), ("follower", client.follower ? "true" : nil),
                              ("unread", client.unread.isEmpty ? nil : client.unread.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())])
        }
        for client in httpClients {
            record("httpClient", [("fd", String(client.fd)), ("accepted", String(client.acceptedAt.nanoseconds)),
                                  ("unread", client.unread.isEmpty ? nil : client.unread.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())])
        }
        record("sockets", [("directory", workerSocketDirectory), ("started", String(workerSocketsStarted))])
        for sockets in workerSockets {
            record("workerSockets", [("pid", String(sockets.pid)), ("startTime", String(sockets.startTime)), ("notifyFD", String(sockets.notifyFD)),
                                     ("notify", sockets.notifyName), ("health", sockets.healthName)])
        }
        if version >= 2 {
            let counters = pool.counters
            record("counters", [("spawns", String(counters.spawns)), ("probeFailures", String(counters.probeFailures))])
            for (reason, count) in counters.failures.sorted(by: { $0.key < $1.key }) {
                record("failures", [("reason", reason.rawValue), ("count", String(count))])
            }
            for (reason, count) in counters.restarts.sorted(by: { $0.key < $1.key }) {
                record("restarts", [("reason", reason.rawValue), ("count", String(count))])
            }
            for (key, count) in counters.rolls.sorted(by: { ($0.key.kind.rawValue, $0.key.succeeded ? 1 : 0) < ($1.key.kind.rawValue, $1.key.succeeded ? 1 : 0) }) {
                record("rolls", [("kind", key.kind.rawValue), ("succeeded", String(key.succeeded)), ("count", String(count))])
            }
            for (name, histogram) in [("rollSeconds", counters.rollSeconds), ("probeSeconds", counters.probeSeconds)] {
                record("histogram", [("name", name), ("bounds", histogram.bounds.map { "\($0)" }.joined(separator: ",")),
                                     ("counts", histogram.counts.map(String.init).joined(separator: ",")),
                                     ("sum", "\(histogram.sum)"), ("count", String(histogram.count))])
            }
        }
        lines.append("end")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads a state written in any version from `oldestReadable` to `version`.
    public static func decode(_ text: String) throws(UpgradeStateError) -> UpgradeState {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard let first = lines.first, first.hasPrefix(magic + " "), let version = Int(first.dropFirst(magic.count + 1)) else {
            throw .notAState
        }
        if let refusal = canRead(version) { throw refusal }
        guard lines.last == "end" else { throw .malformed(line: lines.count, "the state is cut short (no 'end' line)") }
        var reader = StateReader(version: version)
        for (index, line) in lines.enumerated().dropFirst().dropLast() {
            try reader.read(line, number: index + 1)
        }
        return try reader.finish()
    }
}
