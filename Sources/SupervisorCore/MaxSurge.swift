/// How many new workers a roll starts at once (`max_surge`): a count, or a share of the pool rounded up,
/// as Kubernetes' `maxSurge` (default 25 %), and always at least 1 so a roll moves.
public enum MaxSurge: Equatable, Sendable {
    case count(Int)
    case percent(Int)

    /// Kubernetes' default: a quarter of the pool, 1 for pools of up to 4, 4 for 16.
    public static let standard = MaxSurge.percent(25)

    /// The number of new workers that may be starting at once in a pool of `desired` workers.
    public func resolved(for desired: Int) -> Int {
        switch self {
        case .count(let n): return max(1, n)
        case .percent(let p): return max(1, (desired * p + 99) / 100)
        }
    }

    /// As written in the configuration: `4` or `25%`.
    public var configText: String {
        switch self {
        case .count(let n): return String(n)
        case .percent(let p): return "\(p)%"
        }
    }
}

extension ValueParser {
    /// `max_surge`: a count from 1 to 1024, or a share of the pool from 1% to 100%.
    public static func maxSurge(_ text: String) throws(ConfigValueError) -> MaxSurge {
        guard text.hasSuffix("%") else { return .count(try integer(text, in: 1...1024)) }
        let number = String(text.dropLast())
        guard let p = Int(number), (1...100).contains(p) else {
            throw ConfigValueError("'\(text)' is not a share from 1% to 100%")
        }
        return .percent(p)
    }
}
