/// Every configuration key: its section, and how its value is parsed into `Settings`.
/// The same name serves the file (`ready_timeout`), the flag (`--ready-timeout`) and the
/// environment (`HYPERGLASS_READY_TIMEOUT`).
public struct ConfigKey: Sendable {
    public let name: String
    public let section: String
    public let repeatable: Bool
    public let accepts: String
    let apply: @Sendable (inout Settings, String) throws(ConfigValueError) -> Void

    public var flag: String { "--" + name.replacingUnderscores(with: "-") }
    public var environmentVariable: String { "HYPERGLASS_" + name.uppercased() }

    public static func named(_ name: String) -> ConfigKey? { all.first { $0.name == name } }

    public static let all: [ConfigKey] = [
        ConfigKey(name: "workers", section: "supervisor", repeatable: false, accepts: "'auto' or a number from 1 to max_workers") {
            s, v throws(ConfigValueError) in
            if v == "auto" { s.workers = .auto } else { s.workers = .fixed(try ValueParser.integer(v, in: 1...1_000_000)) }
        },
        ConfigKey(name: "max_workers", section: "supervisor", repeatable: false, accepts: "a number from 1 to 1024") {
            s, v throws(ConfigValueError) in s.maxWorkers = try ValueParser.integer(v, in: 1...1024)
        },
        ConfigKey(name: "bind", section: "supervisor", repeatable: true, accepts: "HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH") {
            s, v throws(ConfigValueError) in s.bind.append(try ValueParser.bindAddress(v))
        },
        ConfigKey(name: "graceful_timeout", section: "supervisor", repeatable: false, accepts: "a duration such as 30s, 500ms or 2m") {
            s, v throws(ConfigValueError) in s.gracefulTimeout = try ValueParser.duration(v)
        },
        ConfigKey(name: "control_socket", section: "supervisor", repeatable: false, accepts: "an absolute path") {
            s, v throws(ConfigValueError) in s.controlSocket = try ValueParser.absolutePath(v)
        },
        ConfigKey(name: "control_group", section: "supervisor", repeatable: false, accepts: "a group name") {
            s, v throws(ConfigValueError) in s.controlGroup = try ValueParser.word(v)
        },
        ConfigKey(name: "metrics_bind", section: "supervisor", repeatable: false, accepts: "HOST:PORT, [IPV6]:PORT or :PORT, or off") {
            s, v throws(ConfigValueError) in
            if v == "off" { s.metricsBind = nil; return }
            let address = try ValueParser.bindAddress(v)
            guard case .tcp = address else { throw ConfigValueError("'\(v)' is not a TCP address: Prometheus scrapes over TCP (e.g. 127.0.0.1:9101)") }
            s.metricsBind = address
        },
        ConfigKey(name: "debug", section: "supervisor", repeatable: false, accepts: "true or false") {
            s, v throws(ConfigValueError) in s.debug = try ValueParser.boolean(v)
        },
        ConfigKey(name: "crash_loop", section: "supervisor", repeatable: false, accepts: "keep-trying or exit") {
            s, v throws(ConfigValueError) in s.crashLoop = try ValueParser.choice(v, CrashLoopPolicy.self)
        },
        ConfigKey(name: "watchdog_requires_ready", section: "supervisor", repeatable: false, accepts: "true or false") {
            s, v throws(ConfigValueError) in s.health.watchdogRequiresReady = try ValueParser.boolean(v)
        },
        ConfigKey(name: "unready_timeout", section: "supervisor", repeatable: false, accepts: "a duration such as 60s") {
            s, v throws(ConfigValueError) in s.health.unreadyTimeout = try ValueParser.duration(v)
        },
        ConfigKey(name: "command", section: "worker", repeatable: false, accepts: "a command line, quoted like a shell's") {
            s, v throws(ConfigValueError) in s.command = try ValueParser.commandLine(v)
        },
        ConfigKey(name: "environment", section: "worker", repeatable: true, accepts: "KEY=VALUE") {
            s, v throws(ConfigValueError) in s.environment.append(try ValueParser.environmentEntry(v))
        },
        ConfigKey(name: "readiness", section: "worker", repeatable: false, accepts: "exec, notify or http") {
            s, v throws(ConfigValueError) in s.readiness = try ValueParser.choice(v, Readiness.self)
        },
        ConfigKey(name: "ready_timeout", section: "worker", repeatable: false, accepts: "a duration such as 60s") {
            s, v throws(ConfigValueError) in s.readyTimeout = try ValueParser.duration(v)
        },
        ConfigKey(name: "watchdog", section: "worker", repeatable: false, accepts: "a duration such as 30s, or 0 for none") {
            s, v throws(ConfigValueError) in
            let interval = try ValueParser.duration(v)
            s.health.workerWatchdog = interval == .zero ? nil : interval
        },
        ConfigKey(name: "watchdog_signal", section: "worker", repeatable: false, accepts: "SIGABRT, SIGQUIT, SIGTERM or SIGKILL") {
            s, v throws(ConfigValueError) in s.health.watchdogSignal = try ValueParser.signal(v)
        },
        ConfigKey(name: "max_memory", section: "worker", repeatable: false, accepts: "a size such as 512M or 2G, or 0 for none") {
            s, v throws(ConfigValueError) in s.health.maxMemory = v == "0" ? nil : try ValueParser.size(v)
        },
        ConfigKey(name: "max_surge", section: "worker", repeatable: false, accepts: "a number from 1 to 1024") {
            s, v throws(ConfigValueError) in s.maxSurge = try ValueParser.integer(v, in: 1...1024)
        },
        ConfigKey(name: "backoff_initial", section: "restart", repeatable: false, accepts: "a duration such as 1s") {
            s, v throws(ConfigValueError) in s.backoff.initial = try ValueParser.duration(v)
        },
        ConfigKey(name: "backoff_max", section: "restart", repeatable: false, accepts: "a duration such as 30s") {
            s, v throws(ConfigValueError) in s.backoff.maximum = try ValueParser.duration(v)
        },
        ConfigKey(name: "backoff_reset", section: "restart", repeatable: false, accepts: "a duration such as 60s") {
            s, v throws(ConfigValueError) in s.backoff.reset = try ValueParser.duration(v)
        },
        ConfigKey(name: "crash_loop_threshold", section: "restart", repeatable: false, accepts: "a number from 1 to 1000") {
            s, v throws(ConfigValueError) in s.crashLoopThreshold = try ValueParser.integer(v, in: 1...1000)
        },
        ConfigKey(name: "health_path", section: "health", repeatable: false, accepts: "a URL path such as /health") {
            s, v throws(ConfigValueError) in
            guard v.hasPrefix("/"), !v.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) else {
                throw ConfigValueError("'\(v)' is not a URL path (use e.g. /health)")
            }
            s.health.probePath = v
        },
        ConfigKey(name: "health_interval", section: "health", repeatable: false, accepts: "a duration such as 10s") {
            s, v throws(ConfigValueError) in s.health.probeInterval = try ValueParser.duration(v)
        },
        ConfigKey(name: "health_timeout", section: "health", repeatable: false, accepts: "a duration such as 2s") {
            s, v throws(ConfigValueError) in s.health.probeTimeout = try ValueParser.duration(v)
        },
        ConfigKey(name: "health_failures", section: "health", repeatable: false, accepts: "a number from 1 to 100") {
            s, v throws(ConfigValueError) in s.health.probeFailures = try ValueParser.integer(v, in: 1...100)
        },
        ConfigKey(name: "health_grace", section: "health", repeatable: false, accepts: "a duration such as 60s (default: ready_timeout)") {
            s, v throws(ConfigValueError) in s.health.probeGrace = try ValueParser.duration(v)
        },
    ]

    public static let sections = ["supervisor", "worker", "restart", "health"]
}

extension String {
    func replacingUnderscores(with replacement: Character) -> String {
        String(map { $0 == "_" ? replacement : $0 })
    }
}
