import Glibc
import SupervisorCore

/// Loads the effective settings for an invocation and resolves the worker command.
enum Configuration {
    /// Not /etc/hyperglass: the hyperglass looking glass refuses to start when both it and ~/hyperglass exist.
    static let defaultPath = "/etc/hyperglass-supervisor/supervisor.conf"
    /// Where earlier installs put it; still read, with a notice, when defaultPath does not exist.
    static let legacyPath = "/etc/hyperglass/supervisor.conf"

    /// The settings plus where they came from, for messages and check-config.
    struct Loaded {
        var settings: Settings
        var file: String?
    }

    /// `startedFrom`: for a reload, the file the running supervisor was started from. It must still be
    /// readable: a reload must not fall back to the built-in defaults (the bundled worker, another count)
    /// because the default file was moved away (issue 25, item 3).
    static func load(_ invocation: Invocation, environment: [String: String], startedFrom: String? = nil) throws(ConfigError) -> Loaded {
        var loader = ConfigLoader()
        var file = invocation.configPath ?? environment["HYPERGLASS_CONFIG"]
        let explicit = file != nil
        var role: String? = explicit ? nil : "the default configuration file"
        if let startedFrom, !explicit {
            // The one move allowed: from the legacy path to the default, as the notice at start advises.
            file = startedFrom == legacyPath && Sys.fileExists(defaultPath) ? defaultPath : startedFrom
            role = "the file this supervisor started from; restore it, or restart to run without it"
        }
        if file == nil, Sys.fileExists(defaultPath) { file = defaultPath }
        if file == nil, Sys.fileExists(legacyPath) {
            file = legacyPath
            Log(verbose: false)(.notice, "reading \(legacyPath), the old default; move it to \(defaultPath)")
        }
        if let file {
            try loader.load(file: try ConfigFile.read(file, role: role), named: file)
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
        if !settings.prestart.isEmpty { settings.prestart = try resolveCommand(settings.prestart, path: environment["PATH"], key: "prestart") }
        return Loaded(settings: settings, file: file)
    }

    /// argv with argv[0] made absolute: the bundled worker when empty, else looked up in PATH.
    static func resolveCommand(_ command: [String], path: String?, key: String = "command") throws(ConfigError) -> [String] {
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
                throw ConfigError(location: key, message: "'\(program)' is not an executable file")
            }
            return command
        }
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if Sys.isExecutableFile(candidate) { return [candidate] + command.dropFirst() }
        }
        throw ConfigError(location: key, message: "'\(program)' was not found in PATH; give its absolute path")
    }

    /// The effective configuration as a file `--config` would accept.
    /// `why` says where an `auto` count came from ("4 = 2 × 2 CPUs (cpu.max 200000 100000)").
    static func describe(_ loaded: Loaded, resolvedWorkers: Int, why: String? = nil, more: [String: String] = [:]) -> String {
        let header = "# effective configuration; file: \(loaded.file ?? "none"), then HYPERGLASS_* variables, then flags"
        var notes = loaded.settings.workers == .auto ? ["workers": why ?? "\(resolvedWorkers) on this machine"] : [:]
        notes.merge(more) { $1 }
        return loaded.settings.configurationText(header: header, notes: notes)
    }
}
