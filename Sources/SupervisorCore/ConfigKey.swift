/// Every configuration key, described once: its section, how its value is parsed into `Settings`,
/// how `check-config` prints it back, and whether a reload can apply a change to it.
/// The same name serves the file (`ready_timeout`), the flag (`--ready-timeout`) and the
/// environment (`HYPERGLASS_READY_TIMEOUT`). Adding a key is one entry in `all` (and its field in `Settings`).
public struct ConfigKey: Sendable {
    public let name: String
    public let section: String
    public let repeatable: Bool
    public let accepts: String
    /// False for what a running supervisor cannot change (its sockets, debug mode): only a restart applies it.
    public let reloadable: Bool
    /// Printed by `check-config` as `#name =    # unset` when the key has no value; nil omits the line.
    let unset: String?
    let apply: @Sendable (inout Settings, String) throws(ConfigValueError) -> Void
    /// The value(s) as a file would spell them; empty when unset. Parsing them back gives the same settings.
    let render: @Sendable (Settings) -> [String]
    /// Empties a repeatable key's list before a layer sets it anew.
    let reset: (@Sendable (inout Settings) -> Void)?

    init(_ name: String, _ section: String, accepts: String, reloadable: Bool = true, unset: String? = nil,
         reset: (@Sendable (inout Settings) -> Void)? = nil,
         render: @escaping @Sendable (Settings) -> [String],
         apply: @escaping @Sendable (inout Settings, String) throws(ConfigValueError) -> Void) {
        (self.name, self.section, self.accepts, self.reloadable, self.unset) = (name, section, accepts, reloadable, unset)
        (self.reset, self.render, self.apply) = (reset, render, apply)
        repeatable = reset != nil
    }

    public var flag: String { "--" + name.replacingUnderscores(with: "-") }
    public var environmentVariable: String { "HYPERGLASS_" + name.uppercased() }

    public static func named(_ name: String) -> ConfigKey? { all.first { $0.name == name } }

    /// The value(s) of this key in `settings`, as a file would spell them.
    public func values(in settings: Settings) -> [String] { render(settings) }

    public static let sections = ["supervisor", "worker", "restart", "health"]

    /// In the order `check-config` prints them and `--help` lists them.
    public static let all: [ConfigKey] = [
        ConfigKey("workers", "supervisor",
                  accepts: "'auto' (2 x CPUs), a number from 1 to max_workers, or auto:MIN-MAX to autoscale (e.g. auto:1-16)",
                  render: { [$0.workers.description] }) {
            s, v throws(ConfigValueError) in
            if v == "auto" { s.workers = .auto } else if v.hasPrefix("auto:") { s.workers = .range(try ValueParser.workerRange(String(v.dropFirst(5)))) } else { s.workers = .fixed(try ValueParser.integer(v, in: 1...1_000_000)) }
        },
        ConfigKey("scale_down_delay", "supervisor", accepts: "a duration such as 30s (at least 1s)", render: { [$0.scaleDownDelay.configText] }) {
            s, v throws(ConfigValueError) in
            let delay = try ValueParser.duration(v)
            guard delay >= .seconds(1) else { throw ConfigValueError("\(delay.spoken) is too short") }
            s.scaleDownDelay = delay
        },
        ConfigKey("max_workers", "supervisor", accepts: "a number from 1 to 1024", render: { ["\($0.maxWorkers)"] }) {
            s, v throws(ConfigValueError) in s.maxWorkers = try ValueParser.integer(v, in: 1...1024)
        },
        ConfigKey("bind", "supervisor", accepts: "HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH", reloadable: false,
                  reset: { $0.bind = [] }, render: { $0.bind.map(\.description) }) {
            s, v throws(ConfigValueError) in s.bind.append(try ValueParser.bindAddress(v))
        },
        ConfigKey("nonblocking", "supervisor", accepts: "true or false (false: listeners blocking, as systemd's NonBlocking=no)",
                  reloadable: false, render: { ["\($0.nonBlocking)"] }) {
            s, v throws(ConfigValueError) in s.nonBlocking = try ValueParser.boolean(v)
        },
        ConfigKey("graceful_timeout", "supervisor", accepts: "a duration such as 30s, 500ms or 2m", render: { [$0.gracefulTimeout.configText] }) {
            s, v throws(ConfigValueError) in s.gracefulTimeout = try ValueParser.duration(v)
        },
        ConfigKey("lame_duck", "supervisor", accepts: "a duration such as 10s, or 0 for none", render: { [$0.lameDuck == .zero ? "0" : $0.lameDuck.configText] }) {
            s, v throws(ConfigValueError) in s.lameDuck = try ValueParser.duration(v)
        },
        ConfigKey("control_socket", "supervisor", accepts: "an absolute path", reloadable: false,
                  unset: "$RUNTIME_DIRECTORY/control.sock, else /run/hyperglass/control.sock (root) or $XDG_RUNTIME_DIR/hyperglass/control.sock", render: { $0.controlSocket.map { [$0] } ?? [] }) {
            s, v throws(ConfigValueError) in s.controlSocket = try ValueParser.absolutePath(v)
        },
        ConfigKey("control_group", "supervisor", accepts: "a group name", reloadable: false,
                  unset: "none: only root and the supervisor's own user may use the control socket", render: { $0.controlGroup.map { [$0] } ?? [] }) {
            s, v throws(ConfigValueError) in s.controlGroup = try ValueParser.word(v)
        },
        ConfigKey("metrics_bind", "supervisor", accepts: "HOST:PORT, [IPV6]:PORT or :PORT, or off", reloadable: false,
                  unset: "off: no /metrics, /readyz, /livez", render: { $0.metricsBind.map { [$0.description] } ?? [] }) {
            s, v throws(ConfigValueError) in
            if v == "off" { s.metricsBind = nil; return }
            let address = try ValueParser.bindAddress(v)
            guard case .tcp = address else { throw ConfigValueError("'\(v)' is not a TCP address: Prometheus scrapes over TCP (e.g. 127.0.0.1:9101)") }
            s.metricsBind = address
        },
        ConfigKey("debug", "supervisor", accepts: "true or false", reloadable: false, render: { ["\($0.debug)"] }) {
            s, v throws(ConfigValueError) in s.debug = try ValueParser.boolean(v)
        },
        ConfigKey("crash_loop", "supervisor", accepts: "keep-trying or exit", render: { [$0.crashLoop.rawValue] }) {
            s, v throws(ConfigValueError) in s.crashLoop = try ValueParser.choice(v, CrashLoopPolicy.self)
        },
        ConfigKey("watchdog_requires_ready", "supervisor", accepts: "true or false", render: { ["\($0.health.watchdogRequiresReady)"] }) {
            s, v throws(ConfigValueError) in s.health.watchdogRequiresReady = try ValueParser.boolean(v)
        },
        ConfigKey("unready_timeout", "supervisor", accepts: "a duration such as 60s", render: { [$0.health.unreadyTimeout.configText] }) {
            s, v throws(ConfigValueError) in s.health.unreadyTimeout = try ValueParser.duration(v)
        },
        ConfigKey("prestart", "supervisor", accepts: "a command line, quoted like a shell's", reloadable: false, unset: "no command before the workers",
                  render: { $0.prestart.isEmpty ? [] : [$0.prestart.map(ValueParser.shellQuoted).joined(separator: " ")] }) {
            s, v throws(ConfigValueError) in s.prestart = try ValueParser.commandLine(v)
        },
        ConfigKey("command", "worker", accepts: "a command line, quoted like a shell's", unset: "the bundled hyperglass-worker",
                  render: { $0.command.isEmpty ? [] : [$0.command.map(ValueParser.shellQuoted).joined(separator: " ")] }) {
            s, v throws(ConfigValueError) in s.command = try ValueParser.commandLine(v)
        },
        ConfigKey("environment", "worker", accepts: "KEY=VALUE", unset: "nothing added to the supervisor's own environment", reset: { $0.environment = [] }, render: { $0.environment }) {
            s, v throws(ConfigValueError) in s.environment.append(try ValueParser.environmentEntry(v))
        },
        ConfigKey("readiness", "worker", accepts: "accepting, exec, notify or http", render: { [$0.readiness.rawValue] }) {
            s, v throws(ConfigValueError) in s.readiness = try ValueParser.choice(v, Readiness.self)
        },
        ConfigKey("ready_timeout", "worker", accepts: "a duration such as 60s", render: { [$0.readyTimeout.configText] }) {
            s, v throws(ConfigValueError) in s.readyTimeout = try ValueParser.duration(v)
        },
        ConfigKey("min_ready", "worker", accepts: "a duration such as 3s, or 0 for none", render: { [$0.minReady.configText] }) {
            s, v throws(ConfigValueError) in s.minReady = try ValueParser.duration(v)
        },
        ConfigKey("max_surge", "worker", accepts: "a number from 1 to 1024, or a share of the workers such as 25%", render: { [$0.maxSurge.configText] }) {
            s, v throws(ConfigValueError) in s.maxSurge = try ValueParser.maxSurge(v)
        },
        ConfigKey("watchdog", "worker", accepts: "a duration such as 30s, or 0 for none", render: { [$0.health.workerWatchdog?.configText ?? "0"] }) {
            s, v throws(ConfigValueError) in
            let interval = try ValueParser.duration(v)
            s.health.workerWatchdog = interval == .zero ? nil : interval
        },
        ConfigKey("watchdog_signal", "worker", accepts: "SIGABRT, SIGQUIT, SIGTERM or SIGKILL",
                  render: { [SignalName.of($0.health.watchdogSignal.rawValue)] }) {
            s, v throws(ConfigValueError) in s.health.watchdogSignal = try ValueParser.signal(v)
        },
        ConfigKey("max_memory", "worker", accepts: "a size of at least 1M such as 512M or 2G, or 0 for none",
                  render: { [$0.health.maxMemory.map(ValueParser.sizeText) ?? "0"] }) {
            s, v throws(ConfigValueError) in s.health.maxMemory = v == "0" ? nil : try ValueParser.memoryCeiling(v)
        },
        ConfigKey("memory_max", "worker", accepts: "a size of at least 1M such as 1G, or 0 for none (needs a cgroup v2 memory controller)",
                  render: { [$0.memoryMax.map(ValueParser.sizeText) ?? "0"] }) {
            s, v throws(ConfigValueError) in s.memoryMax = v == "0" ? nil : try ValueParser.memoryCeiling(v)
        },
        ConfigKey("backoff_initial", "restart", accepts: "a duration of at least 10ms such as 1s", render: { [$0.backoff.initial.configText] }) {
            s, v throws(ConfigValueError) in s.backoff.initial = try ValueParser.duration(v, atLeast: BackoffPolicy.shortestInitial)
        },
        ConfigKey("backoff_max", "restart", accepts: "a duration such as 30s", render: { [$0.backoff.maximum.configText] }) {
            s, v throws(ConfigValueError) in s.backoff.maximum = try ValueParser.duration(v)
        },
        ConfigKey("backoff_reset", "restart", accepts: "a duration such as 60s", render: { [$0.backoff.reset.configText] }) {
            s, v throws(ConfigValueError) in s.backoff.reset = try ValueParser.duration(v)
        },
        ConfigKey("crash_loop_threshold", "restart", accepts: "a number from 1 to 1000", render: { ["\($0.crashLoopThreshold)"] }) {
            s, v throws(ConfigValueError) in s.crashLoopThreshold = try ValueParser.integer(v, in: 1...1000)
        },
        ConfigKey("health_path", "health", accepts: "a URL path such as /health", unset: "no HTTP probes",
                  render: { $0.health.probePath.map { [$0] } ?? [] }) {
            s, v throws(ConfigValueError) in
            guard v.hasPrefix("/"), !v.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) else {
                throw ConfigValueError("'\(v)' is not a URL path (use e.g. /health)")
            }
            s.health.probePath = v
        },
        ConfigKey("health_interval", "health", accepts: "a duration such as 10s", render: { [$0.health.probeInterval.configText] }) {
            s, v throws(ConfigValueError) in s.health.probeInterval = try ValueParser.duration(v)
        },
        ConfigKey("health_timeout", "health", accepts: "a duration such as 2s", render: { [$0.health.probeTimeout.configText] }) {
            s, v throws(ConfigValueError) in s.health.probeTimeout = try ValueParser.duration(v)
        },
        ConfigKey("health_failures", "health", accepts: "a number from 1 to 100", render: { ["\($0.health.probeFailures)"] }) {
            s, v throws(ConfigValueError) in s.health.probeFailures = try ValueParser.integer(v, in: 1...100)
        },
        ConfigKey("backlog_wait", "health", accepts: "a duration from 100ms to 1m such as 2s, or 0 for none",
                  render: { [$0.health.backlogWait == .zero ? "0" : $0.health.backlogWait.configText] }) {
            s, v throws(ConfigValueError) in
            // Shorter, a connection that arrived a moment ago would count as one nobody takes.
            let wait = try ValueParser.duration(v)
            guard wait == .zero || wait >= .milliseconds(100) else { throw ConfigValueError("'\(v)' is too short (use 0 for none, or at least 100ms)") }
            // Longer, every reload would stay open that long, refusing the next; a wait that long is no longer a
            // slow pool's but a dead one's, and 0 says "do not judge" better.
            guard wait <= .seconds(60) else { throw ConfigValueError("'\(v)' is too long (at most 1m; use 0 for none)") }
            s.health.backlogWait = wait
        },
        ConfigKey("health_grace", "health", accepts: "a duration such as 60s (default: ready_timeout)", unset: "ready_timeout",
                  render: { $0.health.probeGrace.map { [$0.configText] } ?? [] }) {
            s, v throws(ConfigValueError) in s.health.probeGrace = try ValueParser.duration(v)
        },
    ]
}

extension String {
    func replacingUnderscores(with replacement: Character) -> String {
        String(map { $0 == "_" ? replacement : $0 })
    }
}
