/// Builds `Settings` in layers: the file, then HYPERGLASS_* variables, then flags. Within a layer
/// a repeatable key (bind, environment) accumulates; a later layer that sets it replaces the list.
public struct ConfigLoader: Sendable {
    public private(set) var settings: Settings
    private var layerSeen: Set<String> = []

    public init(_ settings: Settings = Settings()) { self.settings = settings }

    /// Parses an INI-style file: `[section]`, `key = value`, `#` or `;` comments.
    public mutating func load(file text: String, named name: String) throws(ConfigError) {
        layerSeen = []
        var section: String? = nil
        var lineNumber = 0
        // "\r\n" is one Character in Swift, so splitting on "\n" alone would see a CRLF file as one line.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = rawLine.trimmed
            let location = "\(name):\(lineNumber)"
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw ConfigError(location: location, message: "a section header must end with ']'") }
                let title = String(line.dropFirst().dropLast()).trimmed
                guard ConfigKey.sections.contains(title) else {
                    let hint = Suggestion.closest(to: title, among: ConfigKey.sections).map { "; did you mean [\($0)]?" }
                        ?? " (sections: \(ConfigKey.sections.map { "[\($0)]" }.joined(separator: ", ")))"
                    throw ConfigError(location: location, message: "unknown section [\(title)]\(hint)")
                }
                section = title
                continue
            }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError(location: location, message: "expected 'key = value', found '\(line)'")
            }
            let keyName = String(line[..<eq]).trimmed
            let value = String(line[line.index(after: eq)...]).trimmed
            guard let key = ConfigKey.named(keyName) else {
                let hint = Suggestion.closest(to: keyName, among: ConfigKey.all.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
                throw ConfigError(location: location, message: "unknown key '\(keyName)'\(hint)")
            }
            guard let section else {
                throw ConfigError(location: location, message: "key '\(keyName)' must come after a section header ([\(key.section)])")
            }
            guard section == key.section else {
                throw ConfigError(location: location, message: "key '\(keyName)' belongs in [\(key.section)], not [\(section)]")
            }
            // command keeps its quotes: they are the shell-like word syntax.
            try apply(key, key.name == "command" ? value : unquote(value), location: location)
        }
    }

    /// Applies every HYPERGLASS_<KEY> variable that names a known key; others are left alone
    /// (HYPERGLASS_WORKER_ID, for one, is ours for workers). Lists are separated by commas.
    public mutating func load(environment: [String: String]) throws(ConfigError) {
        layerSeen = []
        for key in ConfigKey.all {
            guard let value = environment[key.environmentVariable] else { continue }
            let parts = key.repeatable ? value.split(separator: ",").map { String($0).trimmed } : [value.trimmed]
            for part in parts where !part.isEmpty {
                try apply(key, part, location: key.environmentVariable)
            }
        }
    }

    /// Starts the flags layer; then call `apply(flag:value:)` for each.
    public mutating func beginFlags() { layerSeen = [] }

    public mutating func apply(flag key: ConfigKey, value: String) throws(ConfigError) {
        try apply(key, value, location: key.flag)
    }

    private mutating func apply(_ key: ConfigKey, _ value: String, location: String) throws(ConfigError) {
        if let reset = key.reset, !layerSeen.contains(key.name) {
            reset(&settings)
        } else if !key.repeatable, layerSeen.contains(key.name), location.contains(":") {
            throw ConfigError(location: location, message: "key '\(key.name)' is set twice; it takes one value")
        }
        layerSeen.insert(key.name)
        do {
            try key.apply(&settings, value)
        } catch {
            throw ConfigError(location: location, message: "\(key.name): \(error.message); expected \(key.accepts)")
        }
    }

    /// Checks what single keys cannot: relations between keys.
    public func validated() throws(ConfigError) -> Settings {
        if case .fixed(let n) = settings.workers, n > settings.maxWorkers {
            throw ConfigError(location: "workers", message: "\(n) workers exceed max_workers (\(settings.maxWorkers)); raise max_workers or lower workers")
        }
        if let range = settings.autoscaleRange, range.upperBound > settings.maxWorkers {
            throw ConfigError(location: "workers", message: "autoscaling up to \(range.upperBound) workers exceeds max_workers (\(settings.maxWorkers)); raise max_workers or lower the range's maximum")
        }
        if settings.bind.isEmpty {
            throw ConfigError(location: "bind", message: "no address to listen on; set bind = HOST:PORT")
        }
        if settings.readiness == .http, settings.health.probePath == nil {
            throw ConfigError(location: "readiness", message: "readiness = http needs a health_path to probe; set health_path = /health (in [health]) or use readiness = notify")
        }
        if settings.health.probeInterval < .milliseconds(100) || settings.health.probeTimeout < .milliseconds(10) {
            throw ConfigError(location: "health_interval", message: "health_interval must be at least 100ms and health_timeout at least 10ms")
        }
        if let watchdog = settings.health.workerWatchdog, watchdog < .milliseconds(100) {
            throw ConfigError(location: "watchdog", message: "watchdog = \(watchdog.spoken) is too short; use at least 100ms, or 0 to turn it off")
        }
        if settings.backoff.initial > settings.backoff.maximum {
            throw ConfigError(location: "backoff_initial", message: "backoff_initial (\(settings.backoff.initial.spoken)) is longer than backoff_max (\(settings.backoff.maximum.spoken))")
        }
        return settings
    }

    private func unquote(_ value: String) -> String {
        if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
            return String(value.dropFirst().dropLast())
        }
        return value
    }
}

extension StringProtocol {
    var trimmed: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
