import ControlProtocol

/// What the supervisor's HTTP listener answers on `/readyz` and `/livez`, for orchestrators and load
/// balancers. Pure: the same pool and instant always give the same answer.
public enum HealthEndpoints {
    /// Ready to be sent traffic, by `ReadyShare`'s one rule (as `hyperglassctl health`): the pool is not
    /// stopping, its workers take the connections that wait, and at least `share` of the desired workers are
    /// ready. A lame-duck or draining pool says no at once, so a load balancer stops sending before the
    /// workers are gone; a pool whose connections wait unaccepted says no as soon as a look shows it.
    public static func readiness(_ pool: Pool, share: Double, at now: Instant) -> (ok: Bool, text: String) {
        let needed = ReadyShare.needed(desired: pool.desired, share: share)
        let ok = ReadyShare.isReady(ready: pool.readyCount, desired: pool.desired, acceptsTraffic: pool.phase.acceptsTraffic,
                                    stalled: pool.backlogStall != nil, share: share)
        return (ok, pool.statusText(at: now) + " (\(needed) needed)")
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
