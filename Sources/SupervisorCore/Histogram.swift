/// A Prometheus-style histogram: fixed upper bounds chosen up front, so observing is O(buckets) and
/// memory never grows. Counts are kept per bucket and made cumulative only when rendered.
public struct Histogram: Equatable, Sendable {
    /// Upper bounds, ascending; the implicit last bucket is +Inf.
    public let bounds: [Double]
    /// Observations per bucket (not cumulative); one more entry than `bounds`, for +Inf.
    public private(set) var counts: [UInt64]
    public private(set) var sum: Double = 0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Double]) {
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "histogram bounds must ascend")
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count + 1)
    }

    /// A histogram carried across an upgrade (UpgradeState.swift); `counts` has one entry more than `bounds`.
    init(bounds: [Double], counts: [UInt64], sum: Double, count: UInt64) {
        self.init(bounds: bounds)
        self.counts = counts
        self.sum = sum
        self.count = count
    }

    public mutating func observe(_ value: Double) {
        let index = bounds.firstIndex { value <= $0 } ?? bounds.count
        counts[index] += 1
        sum += value
        count += 1
    }

    /// (upper bound, cumulative count) pairs, +Inf last, as the exposition format wants them.
    public var cumulative: [(le: Double, count: UInt64)] {
        var running: UInt64 = 0
        var result: [(Double, UInt64)] = []
        for (index, n) in counts.enumerated() {
            running += n
            result.append((index < bounds.count ? bounds[index] : .infinity, running))
        }
        return result
    }

    /// Probe latencies: a healthy local worker answers in about a millisecond; `health_timeout` defaults to 2 s.
    public static let probeSeconds = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    /// Rolls: one worker replaced in a second or two, a large pool with slow starts in minutes.
    public static let rollSeconds = Histogram(bounds: [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800])
}
