/// What the supervisor's HTTP listener answers on `/readyz` and `/livez`, for orchestrators and load
/// balancers. Pure: the same pool and instant always give the same answer.
public enum HealthEndpoints {
    /// Ready to be sent traffic (`share` is ControlProtocol's `ReadyShare.defaultShare` unless a probe asks
    /// otherwise; the core cannot import it): the pool is not stopping and at least `share` of the desired workers
    /// (rounded up, at least one) are ready. A lame-duck or draining pool says no at once, so a load
    /// balancer stops sending before the workers are gone.
    public static func readiness(_ pool: Pool, share: Double, at now: Instant) -> (ok: Bool, text: String) {
        let needed = max(1, Int((min(1, max(0, share)) * Double(pool.desired)).rounded(.up)))
        let ok = pool.phase.acceptsTraffic && pool.readyCount >= needed
        return (ok, pool.statusText(at: now) + " (\(needed) needed)")
    }

    /// `ready_share=0.75` or `ready_share=75%` from a query string (as `hyperglassctl health --ready-share`);
    /// nil when absent or not a share.
    public static func readyShare(query: String) -> Double? {
        for pair in query.split(separator: "&") where pair.hasPrefix("ready_share=") {
            var text = pair.dropFirst("ready_share=".count)
            let percent = text.hasSuffix("%") || text.hasSuffix("%25")
            if text.hasSuffix("%25") { text = text.dropLast(3) } else if percent { text = text.dropLast() }
            guard let value = Double(text), value.isFinite else { return nil }
            let share = percent ? value / 100 : value
            return (0...1).contains(share) ? share : nil
        }
        return nil
    }

    /// Alive: false only when the supervisor has given up on its pool the way it tells systemd's watchdog
    /// (`watchdog_requires_ready`: no worker ready for `unready_timeout`), so an orchestrator restarts it
    /// for the same reason systemd would. A slow or crash-looping pool is alive but not ready.
    public static func liveness(_ pool: Pool, at now: Instant) -> (ok: Bool, text: String) {
        if pool.watchdogWithheld(at: now) {
            return (false, "no worker has been ready for \(pool.policy.health.unreadyTimeout.spoken)")
        }
        return (true, "alive")
    }
}
