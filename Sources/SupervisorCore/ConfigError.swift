/// A configuration problem, located so the operator can go and fix it.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// "supervisor.conf:12", "HYPERGLASS_WORKERS" or "--workers".
    public let location: String
    public let message: String

    public init(location: String, message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): \(message)" }

    /// The error without the text it quotes from the configuration ('…' for each quoted span): what the
    /// pool keeps for `status`, which members of control_group may read. A quoted line or value can be a
    /// secret (`environment = API_TOKEN: s3cr3t`); the reply to the reload and the journal say it whole
    /// (issue 25, item 13).
    public var withoutQuotedText: String {
        var result = ""
        var quoted = false
        for character in description {
            if character == "'" {
                result += quoted ? "…'" : "'"
                quoted.toggle()
            } else if !quoted {
                result.append(character)
            }
        }
        // An unmatched quote: what followed it is dropped as well.
        return quoted ? result + "…'" : result
    }
}

/// Suggests the closest known name for a misspelt one ("wrokers" → "workers").
public enum Suggestion {
    public static func closest(to word: String, among names: [String]) -> String? {
        let scored = names.map { ($0, distance(Array(word), Array($0))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, word.count / 3) else { return nil }
        return best.0
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps.
    private static func distance(_ a: [Character], _ b: [Character]) -> Int {
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in stride(from: 1, through: a.count, by: 1) {
            for j in stride(from: 1, through: b.count, by: 1) {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
