/// Settings written back as a configuration file, and the differences a reload cannot apply:
/// both derived from `ConfigKey.all`, so a new key appears in `check-config` without more code.
extension Settings {
    /// The file `--config` would accept for these settings, one `key = value` line per value, by section.
    /// `notes` adds a comment line before a key's line (`# workers: 4 on this machine`): a comment on the
    /// key's own line would be read back as part of its value, and the text must load as it is.
    public func configurationText(header: String, notes: [String: String] = [:]) -> String {
        var lines = [header]
        for section in ConfigKey.sections {
            if section != ConfigKey.sections.first { lines.append("") }
            lines.append("[\(section)]")
            for key in ConfigKey.all where key.section == section {
                let values = key.render(self)
                if values.isEmpty, let unset = key.unset { lines.append("#\(key.name) =    # \(unset)") }
                if !values.isEmpty, let note = notes[key.name] { lines.append("# \(key.name): \(note)") }
                for value in values { lines.append("\(key.name) = \(value)") }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The keys whose value differs from `running` but only a restart applies (`bind`, `debug`...), in key order.
    public func restartNeeded(comparedTo running: Settings) -> [String] {
        ConfigKey.all.filter { !$0.reloadable && $0.render(self) != $0.render(running) }.map(\.name)
    }
}

extension Duration {
    /// The duration as a configuration value that parses back to exactly this duration:
    /// the short spoken form (`30s`, `1.5s`, `2m`) when it is exact, else milliseconds or seconds in full.
    public var configText: String {
        if (try? ValueParser.duration(spoken)) == self { return spoken }
        let ns = nanoseconds
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
        var fraction = String(ns % 1_000_000_000)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(ns / 1_000_000_000).\(fraction)s"
    }
}
