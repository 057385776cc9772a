/// A point on the monotonic clock. The core never reads a clock: the shell passes `now` in.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: Instant, d: Duration) -> Instant {
        let delta = d.nanoseconds
        return Instant(nanoseconds: delta >= 0 ? a.nanoseconds &+ UInt64(delta) : a.nanoseconds &- UInt64(-delta))
    }

    public static func - (a: Instant, b: Instant) -> Duration {
        a >= b ? .nanoseconds(Int64(a.nanoseconds - b.nanoseconds)) : .nanoseconds(-Int64(b.nanoseconds - a.nanoseconds))
    }

    public var description: String { "\(nanoseconds / 1_000_000)ms" }
}

extension Duration {
    /// The whole nanoseconds of this duration (sub-nanosecond parts are dropped).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    public var seconds: Double { Double(nanoseconds) / 1e9 }

    /// Human form used in logs and STATUS=: "250ms", "4s", "1.5s", "2m".
    public var spoken: String {
        let ns = nanoseconds
        if ns < 1_000_000_000 { return "\(ns / 1_000_000)ms" }
        if ns % 60_000_000_000 == 0 { return "\(ns / 60_000_000_000)m" }
        let tenths = (ns + 50_000_000) / 100_000_000
        return tenths % 10 == 0 ? "\(tenths / 10)s" : "\(tenths / 10).\(tenths % 10)s"
    }

    /// Multiplies by a factor, e.g. for jitter.
    public func scaled(by factor: Double) -> Duration {
        .nanoseconds(Int64((Double(nanoseconds) * factor).rounded()))
    }
}
