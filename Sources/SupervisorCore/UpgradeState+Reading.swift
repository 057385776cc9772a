/// Percent-escaping for state values: a value never holds a space, '=', '%' or a line break.
enum StateText {
    static func escape(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            if byte <= 0x20 || byte == 0x25 || byte == 0x3D || byte >= 0x7F {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    static func unescape(_ value: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = value.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == 0x25 else { bytes.append(byte); continue }
            guard let high = utf8.next(), let low = utf8.next(),
                  let decoded = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(decoded)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func exit(_ status: ExitStatus) -> String {
        switch status {
        case .exited(let code): "exited:\(code)"
        case .signaled(let signal): "signaled:\(signal)"
        case .oomKilled: "oom:9"
        }
    }

    static func exitStatus(_ text: String) -> ExitStatus? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let value = Int32(parts[1]) else { return nil }
        switch parts[0] {
        case "exited": return .exited(value)
        case "signaled": return .signaled(value)
        case "oom": return .oomKilled
        default: return nil
        }
    }
}

/// Builds an `UpgradeState` one record at a time; unknown keys are skipped (a later minor addition),
/// unknown record kinds too, but a missing required field or a bad number is an error.
struct StateReader {
    let version: Int
    private var from: (version: String, handover: Instant, started: Instant?)?
    private var release: Int?
    private var rollSerial = 0
    private var pinned: Int?
    private var slots: [Slot] = []
    private var retired: [Int: Int] = [:]
    private var lastRoll: RollOutcome?
    private var workers: [WorkerProcess] = []
    private var listeners: [CarriedListener] = []
    private var metricsListeners: [CarriedListener] = []
    private var control: CarriedControl?
    private var waiter: Int32?
    private var directory: (path: String, started: Int)?
    private var workerSockets: [CarriedWorkerSockets] = []
    private var clients: [CarriedClient] = []
    private var httpClients: [CarriedHTTPClient] = []
    private var spawns: UInt64 = 0
    private var probeFailures: UInt64 = 0
    private var failures: [FailureReason: UInt64] = [:]
    private var restarts: [FailureReason: UInt64] = [:]
    private var rolls: [PoolCounters.RollOutcomeKey: UInt64] = [:]
    private var histograms: [String: Histogram] = [:]

    init(version: Int) { self.version = version }

    /// What a real state holds: a pid is a process (never 0, init, or a group), an fd is open, a count or
    /// generation far below where an increment would overflow, a counter exact as a Prometheus float.
    static let pids: ClosedRange<Int32> = 2...Int32.max
    static let fds: ClosedRange<Int32> = 0...Int32.max
    static let counts: ClosedRange<Int> = 0...(1 << 40)
    static let counters: ClosedRange<UInt64> = 0...(1 << 53)
    static let maxSlots = 1 << 16
    /// Monotonic nanoseconds (146 years): the difference of two stays an Int64 Duration.
    static let instants: ClosedRange<UInt64> = 0...(1 << 62)

    /// One record's fields, with typed lookups that name the line when something is wrong.
    private struct Fields {
        let number: Int
        var values: [String: String] = [:]

        func string(_ key: String) throws(UpgradeStateError) -> String {
            guard let value = values[key] else { throw .malformed(line: number, "missing '\(key)'") }
            return value
        }
        func optional<T: LosslessStringConvertible>(_ key: String, as type: T.Type = T.self) throws(UpgradeStateError) -> T? {
            guard let text = values[key] else { return nil }
            guard let value = T(text) else { throw .malformed(line: number, "'\(key)' is not a valid \(T.self): '\(text)'") }
            return value
        }
        func required<T: LosslessStringConvertible>(_ key: String, as type: T.Type = T.self) throws(UpgradeStateError) -> T {
            guard let value: T = try optional(key) else { throw .malformed(line: number, "missing '\(key)'") }
            return value
        }
        /// A number a real pool cannot exceed (counts, generations, slot ids): a forged or corrupt state must
        /// not reach the pool with values whose next increment traps, or a pid or fd that means something else.
        func bounded<T: FixedWidthInteger & LosslessStringConvertible>(_ key: String, _ range: ClosedRange<T>) throws(UpgradeStateError) -> T? {
            guard let value: T = try optional(key) else { return nil }
            guard range.contains(value) else { throw .malformed(line: number, "'\(key)' is out of range (\(range.lowerBound) to \(range.upperBound)): \(value)") }
            return value
        }
        func bounded<T: FixedWidthInteger & LosslessStringConvertible>(required key: String, _ range: ClosedRange<T>) throws(UpgradeStateError) -> T {
            guard let value = try bounded(key, range) else { throw .malformed(line: number, "missing '\(key)'") }
            return value
        }
        func pid(_ key: String) throws(UpgradeStateError) -> Int32? { try bounded(key, StateReader.pids) }
        func fd(_ key: String) throws(UpgradeStateError) -> Int32 { try bounded(required: key, StateReader.fds) }
        func count(_ key: String) throws(UpgradeStateError) -> Int { try bounded(required: key, StateReader.counts) }
        func counter(_ key: String) throws(UpgradeStateError) -> UInt64? { try bounded(key, StateReader.counters) }

        func instant(_ key: String) throws(UpgradeStateError) -> Instant? {
            try bounded(key, StateReader.instants).map { Instant(nanoseconds: $0) }
        }
        func reason(_ key: String) throws(UpgradeStateError) -> FailureReason {
            let text = try string(key)
            guard let reason = FailureReason(rawValue: text) else { throw .malformed(line: number, "unknown reason '\(text)'") }
            return reason
        }
    }

    mutating func read(_ line: String, number: Int) throws(UpgradeStateError) {
        let words = line.split(separator: " ")
        guard let kind = words.first else { return }
        var fields = Fields(number: number)
        for word in words.dropFirst() {
            guard let equals = word.firstIndex(of: "="), let value = StateText.unescape(word[word.index(after: equals)...]) else {
                throw .malformed(line: number, "'\(word)' is not key=value")
            }
            fields.values[String(word[..<equals])] = value
        }
        switch kind {
        case "from":
            from = (try fields.string("version"), try fields.instant("handover") ?? Instant(nanoseconds: 0), try fields.instant("started"))
        case "pool":
            release = try fields.count("release")
            rollSerial = try fields.bounded("rollSerial", StateReader.counts) ?? 0
            pinned = try fields.bounded("pinned", 1...StateReader.maxSlots)
        case "slot":
            var slot = Slot(id: try fields.count("id"), release: try fields.count("release"))
            guard slot.id == slots.count else { throw .malformed(line: number, "slot \(slot.id) out of order (expected \(slots.count))") }
            guard slot.id < StateReader.maxSlots else { throw .malformed(line: number, "more than \(StateReader.maxSlots) slots") }
            slot.pid = try fields.pid("pid")
            slot.generation = try fields.count("generation")
            slot.askedGeneration = try fields.bounded("asked", StateReader.counts) ?? slot.generation
            slot.restartAt = try fields.instant("restartAt")
            slot.failures = try fields.bounded("failures", StateReader.counts) ?? 0
            slot.restarts = try fields.bounded("restarts", StateReader.counts) ?? 0
            if let text = fields.values["lastExit"] {
                guard let exit = StateText.exitStatus(text) else { throw .malformed(line: number, "bad lastExit '\(text)'") }
                slot.lastExit = exit
            }
            slot.lastFailure = fields.values["lastFailure"]
            // Absent before issue 25's resource limits: no slot was waiting.
            slot.waitingForResources = fields.values["waiting"] == "1"
            slots.append(slot)
        case "lastRoll":
            let text = try fields.string("kind")
            guard let kind = Roll.Kind(rawValue: text) else { throw .malformed(line: number, "unknown roll kind '\(text)'") }
            lastRoll = RollOutcome(id: try fields.count("id"), kind: kind, succeeded: try fields.required("succeeded"),
                                   summary: try fields.string("summary"), note: fields.values["note"])
        case "retired":
            retired[try fields.count("slot")] = try fields.count("generation")
        case "worker":
            guard let pid = try fields.pid("pid") else { throw .malformed(line: number, "missing 'pid'") }
            let slot = try fields.count("slot")
            guard slot < slots.count else { throw .malformed(line: number, "worker pid \(pid) of slot \(slot), which the state does not have") }
            guard !workers.contains(where: { $0.pid == pid }) else { throw .malformed(line: number, "worker pid \(pid) twice") }
            var worker = WorkerProcess(pid: pid, slot: slot, generation: try fields.count("generation"),
                                       release: try fields.count("release"), startedAt: try fields.instant("startedAt") ?? Instant(nanoseconds: 0))
            worker.readyAt = try fields.instant("readyAt")
            worker.readiness.evidence = fields.values["evidence"]
            worker.status = fields.values["status"]
            worker.health.watchdogInterval = try fields.bounded("watchdogUsec", 1...Int64(1 << 40)).map { .microseconds($0) }
            worker.health.lastWatchdogAt = try fields.instant("lastWatchdogAt")
            workers.append(worker)
        case "listener":
            listeners.append(CarriedListener(fd: try fields.fd("fd"), address: try fields.string("address"), ownedPath: fields.values["owned"]))
        case "metrics":  // absent before: the new image binds metrics_bind again
            metricsListeners.append(CarriedListener(fd: try fields.fd("fd"), address: try fields.string("address"), ownedPath: nil))
        case "control":
            control = CarriedControl(fd: try fields.fd("fd"), path: try fields.string("path"))
            waiter = try fields.bounded("waiter", StateReader.fds)
        case "client":
            clients.append(CarriedClient(fd: try fields.fd("fd"), follower: fields.values["follower"] == "true", unread: try unread(fields, line: number)))
        case "httpClient":
            httpClients.append(CarriedHTTPClient(fd: try fields.fd("fd"), acceptedAt: try fields.instant("accepted") ?? Instant(nanoseconds: 0),
                                                 unread: try unread(fields, line: number)))
        case "sockets":
            directory = (try fields.string("directory"), try fields.count("started"))
        case "workerSockets":
            guard let pid = try fields.pid("pid") else { throw .malformed(line: number, "missing 'pid'") }
            workerSockets.append(CarriedWorkerSockets(pid: pid, startTime: try fields.required("startTime"),
                                                      notifyFD: try fields.fd("notifyFD"), notifyName: try fields.string("notify"),
                                                      healthName: fields.values["health"]))
        case "counters":
            spawns = try fields.counter("spawns") ?? 0
            probeFailures = try fields.counter("probeFailures") ?? 0
        case "failures": failures[try fields.reason("reason")] = try fields.bounded(required: "count", StateReader.counters)
        case "restarts": restarts[try fields.reason("reason")] = try fields.bounded(required: "count", StateReader.counters)
        case "rolls":
            let text = try fields.string("kind")
            guard let kind = Roll.Kind(rawValue: text) else { throw .malformed(line: number, "unknown roll kind '\(text)'") }
            let key = PoolCounters.RollOutcomeKey(kind: kind, succeeded: try fields.required("succeeded"))
            let total = rolls[key, default: 0] + (try fields.bounded(required: "count", StateReader.counters))
            guard StateReader.counters.contains(total) else { throw .malformed(line: number, "'count' is out of range: \(total)") }
            rolls[key] = total
        case "histogram":
            let bounds = try fields.string("bounds").split(separator: ",").compactMap { Double($0) }
            let counts = try fields.string("counts").split(separator: ",").compactMap { UInt64($0) }
            guard counts.count == bounds.count + 1 else { throw .malformed(line: number, "a histogram needs one count more than bounds") }
            guard counts.allSatisfy(StateReader.counters.contains) else { throw .malformed(line: number, "a histogram count is out of range") }
            histograms[try fields.string("name")] = Histogram(bounds: bounds, counts: counts, sum: try fields.required("sum"),
                                                             count: try fields.bounded(required: "count", StateReader.counters))
        default:
            break  // a record a later build of this version added: nothing this build would do with it
        }
    }

    /// A record's `unread` bytes, in hex.
    private func unread(_ fields: Fields, line number: Int) throws(UpgradeStateError) -> [UInt8] {
        let hex = Array((fields.values["unread"] ?? "").utf8)
        guard hex.count % 2 == 0 else { throw .malformed(line: number, "'unread' is not hex") }
        var unread: [UInt8] = []
        for index in stride(from: 0, to: hex.count, by: 2) {
            guard let byte = UInt8(String(decoding: hex[index..<index + 2], as: UTF8.self), radix: 16) else {
                throw .malformed(line: number, "'unread' is not hex")
            }
            unread.append(byte)
        }
        return unread
    }

    func finish() throws(UpgradeStateError) -> UpgradeState {
        guard let from else { throw .malformed(line: 0, "no 'from' record") }
        guard let release else { throw .malformed(line: 0, "no 'pool' record") }
        guard let control else { throw .malformed(line: 0, "no 'control' record") }
        guard let directory else { throw .malformed(line: 0, "no 'sockets' record") }
        guard !slots.isEmpty else { throw .malformed(line: 0, "no slots") }
        var counters = PoolCounters()
        // Histograms whose bounds this build changed start afresh rather than mixing two bucketings.
        func carried(_ name: String, _ fresh: Histogram) -> Histogram {
            guard let old = histograms[name], old.bounds == fresh.bounds else { return fresh }
            return old
        }
        counters = PoolCounters(failures: failures, restarts: restarts, spawns: spawns, rolls: rolls,
                                rollSeconds: carried("rollSeconds", counters.rollSeconds),
                                probeSeconds: carried("probeSeconds", counters.probeSeconds), probeFailures: probeFailures)
        var state = UpgradeState(fromVersion: from.version, handoverAt: from.handover,
                                 pool: PoolSnapshot(release: release, rollSerial: rollSerial, slots: slots, workers: workers, counters: counters,
                                                   retiredGenerations: retired, lastRoll: lastRoll),
                                 control: control, workerSocketDirectory: directory.path, workerSocketsStarted: directory.started)
        state.formatVersion = version
        state.startedAt = from.started
        state.pinned = pinned
        state.listeners = listeners
        state.metricsListeners = metricsListeners
        state.waiterFD = waiter
        state.workerSockets = workerSockets
        state.clients = clients
        state.httpClients = httpClients
        return state
    }
}
