import Glibc
import SupervisorCore

/// Loads the effective settings for an invocation and resolves the worker command.
enum Configuration {
    static let defaultPath = "/etc/hyperglass/supervisor.conf"

    /// The settings plus where they came from, for messages and check-config.
    struct Loaded {
        var settings: Settings
        var file: String?
    }

    static func load(_ invocation: Invocation, environment: [String: String]) throws(ConfigError) -> Loaded {
        var loader = ConfigLoader()
        var file = invocation.configPath ?? environment["HYPERGLASS_CONFIG"]
        let explicit = file != nil
        if file == nil, Sys.fileExists(defaultPath) { file = defaultPath }
        if let file {
            let text: String
            do {
                text = try Sys.readFile(file)
            } catch {
                let hint = explicit ? "" : " (the default configuration file)"
                throw ConfigError(location: file, message: "cannot read\(hint): \(String(cString: strerror(error.errno)))")
            }
            try loader.load(file: text, named: file)
        }
        try loader.load(environment: environment)
        loader.beginFlags()
        for (name, value) in invocation.flags {
            guard let key = ConfigKey.named(name) else { preconditionFailure("Arguments.parse checked the flag names") }
            try loader.apply(flag: key, value: value)
        }
        var settings = try loader.validated()
        if let command = invocation.command { settings.command = command }
        settings.command = try resolveCommand(settings.command, path: environment["PATH"])
        return Loaded(settings: settings, file: file)
    }

    /// argv with argv[0] made absolute: the bundled worker when empty, else looked up in PATH.
    static func resolveCommand(_ command: [String], path: String?) throws(ConfigError) -> [String] {
        guard let program = command.first else {
            guard let directory = Sys.executableDirectory() else {
                throw ConfigError(location: "command", message: "cannot locate the bundled hyperglass-worker; set command")
            }
            let bundled = directory + "/hyperglass-worker"
            guard Sys.isExecutableFile(bundled) else {
                throw ConfigError(location: "command", message: "the bundled worker \(bundled) is missing; reinstall hyperglass or set command")
            }
            return [bundled]
        }
        if program.contains("/") {
            guard Sys.isExecutableFile(program) else {
                throw ConfigError(location: "command", message: "'\(program)' is not an executable file")
            }
            return command
        }
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if Sys.isExecutableFile(candidate) { return [candidate] + command.dropFirst() }
        }
        throw ConfigError(location: "command", message: "'\(program)' was not found in PATH; give its absolute path")
    }

    /// The effective configuration as a file `--config` would accept.
    static func describe(_ loaded: Loaded, resolvedWorkers: Int) -> String {
        let s = loaded.settings
        var lines = ["# effective configuration; file: \(loaded.file ?? "none"), then HYPERGLASS_* variables, then flags", "[supervisor]"]
        lines.append("workers = \(s.workers)" + (s.workers == .auto ? "    # \(resolvedWorkers) on this machine" : ""))
        lines.append("max_workers = \(s.maxWorkers)")
        lines += s.bind.map { "bind = \($0)" }
        lines.append("graceful_timeout = \(s.gracefulTimeout.spoken)")
        if let socket = s.controlSocket { lines.append("control_socket = \(socket)") }
        if let group = s.controlGroup { lines.append("control_group = \(group)") }
        lines.append("metrics_bind = \(s.metricsBind.map(String.init(describing:)) ?? "off")")
        lines.append("debug = \(s.debug)")
        lines.append("crash_loop = \(s.crashLoop.rawValue)")
        lines.append("watchdog_requires_ready = \(s.health.watchdogRequiresReady)")
        lines.append("unready_timeout = \(s.health.unreadyTimeout.spoken)")
        lines += ["", "[worker]", "command = \(s.command.map(shellQuoted).joined(separator: " "))"]
        lines += s.environment.map { "environment = \($0)" }
        lines.append("readiness = \(s.readiness.rawValue)")
        lines.append("ready_timeout = \(s.readyTimeout.spoken)")
        lines.append("max_surge = \(s.maxSurge)")
        lines.append("watchdog = \(s.health.workerWatchdog?.spoken ?? "0")")
        lines.append("watchdog_signal = \(SignalName.of(s.health.watchdogSignal.rawValue))")
        lines.append("max_memory = \(s.health.maxMemory.map { "\($0 >> 20)M" } ?? "0")")
        lines += ["", "[restart]", "backoff_initial = \(s.backoff.initial.spoken)", "backoff_max = \(s.backoff.maximum.spoken)",
                  "backoff_reset = \(s.backoff.reset.spoken)", "crash_loop_threshold = \(s.crashLoopThreshold)"]
        lines += ["", "[health]"]
        lines.append(s.health.probePath.map { "health_path = \($0)" } ?? "#health_path =    # no HTTP probes")
        lines += ["health_interval = \(s.health.probeInterval.spoken)", "health_timeout = \(s.health.probeTimeout.spoken)",
                  "health_failures = \(s.health.probeFailures)",
                  s.health.probeGrace.map { "health_grace = \($0.spoken)" } ?? "#health_grace =    # ready_timeout"]
        return lines.joined(separator: "\n") + "\n"
    }

    private static func shellQuoted(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }
        return plain && !word.isEmpty ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
