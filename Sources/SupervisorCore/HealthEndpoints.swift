/// What the supervisor's HTTP listener answers on `/readyz` and `/livez`, for orchestrators and load
/// balancers. Pure: the same pool and instant always give the same answer.
public enum HealthEndpoints {
    /// Ready to be sent traffic: the pool is not stopping and at least one worker serves. A pool that is
    /// draining says no at once, so a load balancer stops sending before the workers are gone.
    public static func readiness(_ pool: Pool, at now: Instant) -> (ok: Bool, text: String) {
        let ok = pool.phase.isActive && pool.readyCount > 0
        return (ok, pool.statusText(at: now))
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
