import ControlProtocol
import Glibc

/// `hyperglassctl health`: the pool as an orchestrator's exec probe or a `HEALTHCHECK` needs it, one
/// exit status and one line. Built on the status reply, so it needs nothing the supervisor lacks.
enum HealthCheck {

    /// Healthy by `ReadyShare`'s one rule (as the supervisor's `/readyz`): the supervisor is neither a lame
    /// duck nor draining, no connection waits `backlog_wait` unaccepted, and at least `readyShare` of the
    /// desired workers are ready.
    static func judge(_ reply: JSON, readyShare: Double) -> (healthy: Bool, reason: String) {
        let supervisor = reply["supervisor"]
        let ready = supervisor?["ready"]?.int ?? 0
        let desired = supervisor?["desired"]?.int ?? 0
        let state = supervisor?["state"]?.string ?? "unknown"
        let needed = ReadyShare.needed(desired: desired, share: readyShare)
        let counts = "\(ready)/\(desired) workers ready, \(needed) needed"
        // A lame duck still serves but wants out of the load balancer before it drains.
        let stopping = state == "draining" || state == "lame-duck"
        if stopping { return (false, "unhealthy: \(state) (\(counts))") }
        // Connections waiting `backlog_wait` unaccepted: the supervisor names the listener and the wait.
        let stall = supervisor?["backlog_stall"]?.string
        let healthy = ReadyShare.isReady(ready: ready, desired: desired, acceptsTraffic: !stopping, stalled: stall != nil, share: readyShare)
        if let stall { return (false, "unhealthy: \(stall) (\(counts))") }
        return (healthy, "\(healthy ? "healthy" : "unhealthy"): \(counts) (\(state))")
    }
}
