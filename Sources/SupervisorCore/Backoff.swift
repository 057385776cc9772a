/// When to restart a worker that exited unasked. Systemd-style: the first restart is immediate,
/// consecutive failures wait `initial`, then twice as long each time, up to `maximum`, with jitter
/// so a pool that failed together does not restart together. A worker that stayed ready for
/// `reset` wipes the slate.
public struct BackoffPolicy: Equatable, Sendable {
    public var initial: Duration
    public var maximum: Duration
    public var reset: Duration
    /// Relative spread, 0.1 = ±10 %.
    public var jitter: Double

    /// The shortest `initial` the configuration accepts: with zero, a worker that cannot start
    /// would be restarted within the same event, forever (the supervisor hung at 100 % CPU).
    public static let shortestInitial: Duration = .milliseconds(10)

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(30),
                reset: Duration = .seconds(60), jitter: Double = 0.1) {
        self.initial = initial
        self.maximum = maximum
        self.reset = reset
        self.jitter = jitter
    }

    /// The delay before restarting after the `failures`-th consecutive failure (1-based), before jitter.
    public func baseDelay(afterFailures failures: Int) -> Duration {
        guard failures > 1 else { return .zero }
        var delay = initial
        for _ in 0..<(failures - 2) {
            if delay >= maximum { break }
            delay = delay * 2
        }
        return min(delay, maximum)
    }

    /// The delay with jitter applied; `unit` is a random value in [0, 1).
    public func delay(afterFailures failures: Int, unit: Double) -> Duration {
        let base = baseDelay(afterFailures: failures)
        let jittered = base.scaled(by: 1 + jitter * (2 * unit - 1))
        return min(jittered, maximum)
    }
}
