/// A value that does not parse; the caller adds where it came from.
public struct ConfigValueError: Error, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// Parsers for configuration values: durations take ms/s/m (bare numbers are seconds).
public enum ValueParser {
    public static func integer(_ text: String, in range: ClosedRange<Int>) throws(ConfigValueError) -> Int {
        guard let n = Int(text) else { throw ConfigValueError("'\(text)' is not a whole number") }
        guard range.contains(n) else {
            throw ConfigValueError("\(n) is out of range (\(range.lowerBound) to \(range.upperBound))")
        }
        return n
    }

    public static func duration(_ text: String) throws(ConfigValueError) -> Duration {
        let units: [(String, Double)] = [("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite, value * scale <= 86_400 * 365 else {
            throw ConfigValueError("'\(text)' is not a duration (use e.g. 500ms, 30s, 2m)")
        }
        return .nanoseconds(Int64((value * scale * 1e9).rounded()))
    }

    /// A duration no shorter than `minimum` (a zero backoff would restart a failing worker in a tight loop).
    public static func duration(_ text: String, atLeast minimum: Duration) throws(ConfigValueError) -> Duration {
        let value = try duration(text)
        guard value >= minimum else { throw ConfigValueError("'\(text)' is too short") }
        return value
    }

    public static func boolean(_ text: String) throws(ConfigValueError) -> Bool {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ConfigValueError("'\(text)' is not true or false")
        }
    }

    public static func choice<T: RawRepresentable & CaseIterable>(_ text: String, _: T.Type) throws(ConfigValueError) -> T
    where T.RawValue == String {
        if let value = T(rawValue: text) { return value }
        let names = T.allCases.map(\.rawValue).joined(separator: ", ")
        throw ConfigValueError("'\(text)' is not one of: \(names)")
    }

    /// Bytes: a number with an optional K, M or G suffix (powers of 1024; KiB/MiB/GiB and KB/MB/GB read the same).
    public static func size(_ text: String) throws(ConfigValueError) -> UInt64 {
        let units: [(String, UInt64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10),
                                         ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
        var number = Substring(text)
        var scale: UInt64 = 1
        for (suffix, factor) in units where text.uppercased().hasSuffix(suffix.uppercased()) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number.trimmed), value > 0, value.isFinite, value * Double(scale) < 1e15 else {
            throw ConfigValueError("'\(text)' is not a size (use e.g. 512M or 2G)")
        }
        let bytes = value * Double(scale)
        guard bytes == bytes.rounded() else { throw ConfigValueError("'\(text)' is not a whole number of bytes") }
        return UInt64(bytes)
    }

    /// The smallest memory ceiling: no worker runs in less, so a lower one would only recycle workers forever.
    public static let smallestMemoryCeiling: UInt64 = 1 << 20

    /// A worker memory ceiling: a size of at least `smallestMemoryCeiling`.
    public static func memoryCeiling(_ text: String) throws(ConfigValueError) -> UInt64 {
        let bytes = try size(text)
        guard bytes >= smallestMemoryCeiling else { throw ConfigValueError("'\(text)' is below 1M, less than any worker uses") }
        return bytes
    }

    /// A size as `size(_:)` reads it back exactly: in M when whole mebibytes (as check-config always printed), else K or bytes.
    public static func sizeText(_ bytes: UInt64) -> String {
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
        if bytes % (1 << 10) == 0 { return "\(bytes >> 10)K" }
        return "\(bytes)"
    }

    /// A word as `commandLine(_:)` reads it back: bare when it is plain, else in single quotes.
    public static func shellQuoted(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }
        return plain && !word.isEmpty ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// A signal for the worker watchdog, by name.
    public static func signal(_ text: String) throws(ConfigValueError) -> Signal {
        let names: [String: Signal] = ["SIGABRT": .abort, "SIGQUIT": .quit, "SIGTERM": .terminate, "SIGKILL": .kill]
        let key = text.uppercased().hasPrefix("SIG") ? text.uppercased() : "SIG" + text.uppercased()
        guard let signal = names[key] else { throw ConfigValueError("'\(text)' is not one of: SIGABRT, SIGQUIT, SIGTERM, SIGKILL") }
        return signal
    }

    public static func word(_ text: String) throws(ConfigValueError) -> String {
        guard !text.isEmpty, !text.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw ConfigValueError("'\(text)' must be a single word")
        }
        return text
    }

    public static func absolutePath(_ text: String) throws(ConfigValueError) -> String {
        guard text.hasPrefix("/") else { throw ConfigValueError("'\(text)' is not an absolute path") }
        return text
    }

    public static func environmentEntry(_ text: String) throws(ConfigValueError) -> String {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex,
              text[..<eq].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw ConfigValueError("'\(text)' is not KEY=VALUE")
        }
        return text
    }

    public static func bindAddress(_ text: String) throws(ConfigValueError) -> BindAddress {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") || path.hasPrefix("@") else {
                throw ConfigValueError("'\(text)': a unix socket path must be absolute (unix:/run/app.sock)")
            }
            return .unix(path: path)
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ConfigValueError("'\(text)' is not [IPV6]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw ConfigValueError("'\(text)' is not HOST:PORT, [IPV6]:PORT or unix:PATH")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ConfigValueError("'\(text)': the port must be a number from 1 to 65535")
        }
        return .tcp(host: host.isEmpty ? nil : String(host), port: port)
    }

    /// Splits a command line the way a POSIX shell would for words: quotes and backslashes, no expansion.
    public static func commandLine(_ text: String) throws(ConfigValueError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character? = nil
        var escaped = false
        for ch in text {
            if escaped {
                // In double quotes a backslash escapes only $ ` " \ (POSIX); before anything else it stays.
                if quote == "\"", !"$`\"\\".contains(ch) { current.append("\\") }
                current.append(ch); escaped = false; continue
            }
            if let q = quote {
                if ch == q { quote = nil } else if ch == "\\" && q == "\"" { escaped = true } else { current.append(ch) }
                continue
            }
            switch ch {
            case "\\": escaped = true; inWord = true
            case "\"", "'": quote = ch; inWord = true
            case " ", "\t":
                if inWord { words.append(current); current = ""; inWord = false }
            default: current.append(ch); inWord = true
            }
        }
        if quote != nil || escaped { throw ConfigValueError("unterminated quote in '\(text)'") }
        if inWord { words.append(current) }
        guard !words.isEmpty else { throw ConfigValueError("the command is empty") }
        return words
    }
}
