/// The Prometheus text exposition format (version 0.0.4), which Prometheus, VictoriaMetrics, Grafana
/// Agent and node_exporter's textfile collector read. Names follow the naming guide: a `hyperglass_`
/// prefix, base units (seconds, bytes), `_total` on counters, and the client libraries' standard
/// `process_*` names for the supervisor itself so existing dashboards find them.
public enum PrometheusText {
    /// The Content-Type of a scrape reply.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ s: MetricsSnapshot) -> String {
        var out = Writer()
        out.family("hyperglass_build_info", .gauge, "The running version, as a label; always 1.")
        out.sample("hyperglass_build_info", [("version", s.version)], 1)
        if let start = s.startTimeSeconds {
            out.family("process_start_time_seconds", .gauge, "When the supervisor started, in seconds since the Unix epoch.")
            out.sample("process_start_time_seconds", [], start)
        }
        if let bytes = s.residentBytes {
            out.family("process_resident_memory_bytes", .gauge, "The supervisor's resident memory.")
            out.sample("process_resident_memory_bytes", [], Double(bytes))
        }
        if let cpu = s.cpuSeconds {
            out.family("process_cpu_seconds_total", .counter, "CPU time the supervisor used (user and system).")
            out.sample("process_cpu_seconds_total", [], cpu)
        }

        out.family("hyperglass_workers_desired", .gauge, "The number of workers the pool is meant to have.")
        out.sample("hyperglass_workers_desired", [], Double(s.desired))
        out.family("hyperglass_workers", .gauge, "Worker processes by state (ready, starting, draining), and slots waiting out a restart backoff.")
        for state in s.states.keys.sorted() { out.sample("hyperglass_workers", [("state", state)], Double(s.states[state]!)) }
        out.family("hyperglass_crash_looping_workers", .gauge, "Slots whose workers failed crash_loop times in a row.")
        out.sample("hyperglass_crash_looping_workers", [], Double(s.crashLooping))

        let counters = s.counters
        out.family("hyperglass_worker_spawns_total", .counter, "Workers started, for any reason.")
        out.sample("hyperglass_worker_spawns_total", [], Double(counters.spawns))
        out.family("hyperglass_worker_failures_total", .counter, "Workers that failed, by reason.")
        for reason in FailureReason.allCases.sorted() {
            out.sample("hyperglass_worker_failures_total", [("reason", reason.rawValue)], Double(counters.failures[reason] ?? 0))
        }
        out.family("hyperglass_worker_restarts_total", .counter, "Replacements of failed workers, by the reason of the failure.")
        for reason in FailureReason.allCases.sorted() {
            out.sample("hyperglass_worker_restarts_total", [("reason", reason.rawValue)], Double(counters.restarts[reason] ?? 0))
        }

        out.family("hyperglass_rolls_total", .counter, "Rolling restarts that ended, by kind (reload, restart) and outcome.")
        for kind in [Roll.Kind.reload, .restart] {
            for succeeded in [false, true] {
                let n = counters.rolls[PoolCounters.RollOutcomeKey(kind: kind, succeeded: succeeded)] ?? 0
                out.sample("hyperglass_rolls_total", [("kind", kind.rawValue), ("outcome", succeeded ? "success" : "failure")], Double(n))
            }
        }
        out.family("hyperglass_roll_in_progress", .gauge, "1 while a reload or restart is replacing workers.")
        out.sample("hyperglass_roll_in_progress", [], s.rollInProgress ? 1 : 0)
        out.histogram("hyperglass_roll_duration_seconds", "How long rolls took, from start to their end.", counters.rollSeconds)
        out.histogram("hyperglass_probe_duration_seconds", "Health probe latency, failed probes included.", counters.probeSeconds)
        out.family("hyperglass_probe_failures_total", .counter, "Health probes that failed (error, timeout, bad status).")
        out.sample("hyperglass_probe_failures_total", [], Double(counters.probeFailures))

        let labels = { (w: MetricsSnapshot.WorkerSample) in [("worker", String(w.slot)), ("pid", String(w.pid))] }
        out.family("hyperglass_worker_resident_memory_bytes", .gauge, "Resident memory of each worker process.")
        for w in s.workers { if let v = w.residentBytes { out.sample("hyperglass_worker_resident_memory_bytes", labels(w), Double(v)) } }
        out.family("hyperglass_worker_cpu_seconds_total", .counter, "CPU time of each worker process (user and system).")
        for w in s.workers { if let v = w.cpuSeconds { out.sample("hyperglass_worker_cpu_seconds_total", labels(w), v) } }
        out.family("hyperglass_worker_watchdog_age_seconds", .gauge, "Time since each worker's last WATCHDOG=1.")
        for w in s.workers { if let v = w.watchdogAge { out.sample("hyperglass_worker_watchdog_age_seconds", labels(w), v) } }

        out.family("hyperglass_listener_accept_queue_length", .gauge, "Connections accepted by the kernel and not yet by a worker.")
        for l in s.listeners { out.sample("hyperglass_listener_accept_queue_length", [("listener", l.address)], Double(l.waiting)) }
        out.family("hyperglass_listener_accept_queue_limit", .gauge, "The listen backlog: the accept queue's length when full.")
        for l in s.listeners { if let limit = l.limit { out.sample("hyperglass_listener_accept_queue_limit", [("listener", l.address)], Double(limit)) } }
        out.family("hyperglass_listener_oldest_wait_seconds", .gauge, "How long the oldest connection in the accept queue has waited (0: none waits; TCP only).")
        for l in s.listeners {
            let wait = l.waiting == 0 ? 0 : l.oldestWait.map(\.seconds)
            if let wait { out.sample("hyperglass_listener_oldest_wait_seconds", [("listener", l.address)], wait) }
        }
        return out.text
    }

    enum MetricType: String { case counter, gauge, histogram }

    struct Writer {
        var text = ""

        mutating func family(_ name: String, _ type: MetricType, _ help: String) {
            text += "# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) \(type.rawValue)\n"
        }

        mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " " + PrometheusText.format(value) + "\n"
        }

        mutating func histogram(_ name: String, _ help: String, _ h: Histogram) {
            family(name, .histogram, help)
            for (le, count) in h.cumulative { sample(name + "_bucket", [("le", PrometheusText.format(le))], Double(count)) }
            sample(name + "_sum", [], h.sum)
            sample(name + "_count", [], Double(h.count))
        }
    }

    /// Go's ParseFloat reads what we write: integers without a fraction, "+Inf", shortest round-trip otherwise.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// In label values a backslash, a double quote and a line feed are escaped.
    static func escapeLabel(_ text: String) -> String {
        var result = ""
        for c in text {
            switch c {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(c)
            }
        }
        return result
    }

    /// In HELP text only a backslash and a line feed are escaped.
    static func escapeHelp(_ text: String) -> String {
        var result = ""
        for c in text {
            switch c {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default: result.append(c)
            }
        }
        return result
    }
}
