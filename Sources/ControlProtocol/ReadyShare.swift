/// The share of desired workers that must be ready for the pool to take traffic, and the one rule that
/// judges it: the supervisor's `/readyz` and `hyperglassctl health` both call `isReady`, so the HTTP probe
/// and the exec probe cannot disagree.
public enum ReadyShare {
    /// Half the pool: one crashed worker in a large pool should not take the node out of a load balancer,
    /// most of them gone should.
    public static let defaultShare = 0.5

    /// What a share looks like, for error messages.
    public static let accepted = "a share from 0 to 1 or a percentage from 0% to 100% (e.g. 0.5 or 50%)"

    /// "0.75" or "75%" (a query string may send "75%25"); nil for anything else, "75" and "150%" included.
    public static func parse(_ text: some StringProtocol) -> Double? {
        var number = Substring(text)
        var percent = false
        if number.hasSuffix("%25") { number = number.dropLast(3); percent = true }
        else if number.hasSuffix("%") { number = number.dropLast(); percent = true }
        guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }), let value = Double(number), value.isFinite else { return nil }
        let share = percent ? value / 100 : value
        return (0...1).contains(share) ? share : nil
    }

    /// `ready_share=` from a query string: nil when absent; a share that does not parse is an error (HTTP 400),
    /// never silently the default.
    public static func inQuery(_ query: some StringProtocol) throws(ControlError) -> Double? {
        for pair in query.split(separator: "&") where pair.hasPrefix("ready_share=") {
            let text = pair.dropFirst("ready_share=".count)
            guard let share = parse(text) else { throw ControlError("ready_share '\(text)' is not \(accepted)") }
            return share
        }
        return nil
    }

    /// The ready workers needed: `share` of `desired`, rounded up, at least one, except that a share of 0
    /// needs none (0 asks only that the supervisor answers and is not stopping).
    public static func needed(desired: Int, share: Double) -> Int {
        guard share > 0 else { return 0 }
        // Less a hair, so that 0.7 × 10 (7.000000000000001 in binary) needs 7, not 8.
        return max(1, Int((share * Double(desired) - 1e-9).rounded(.up)))
    }

    /// Ready for traffic: the pool is not a lame duck nor draining, its workers take the connections that
    /// wait (`backlog_wait`: not `stalled`), and `needed` workers are ready.
    public static func isReady(ready: Int, desired: Int, acceptsTraffic: Bool, stalled: Bool, share: Double) -> Bool {
        acceptsTraffic && !stalled && ready >= needed(desired: desired, share: share)
    }
}
