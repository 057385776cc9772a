import ControlProtocol
import Glibc

/// `hyperglassctl health`: the pool as an orchestrator's exec probe or a `HEALTHCHECK` needs it, one
/// exit status and one line. Built on the status reply, so it needs nothing the supervisor lacks.
enum HealthCheck {
    /// Half the pool: one crashed worker in a large pool should not take the whole instance out of a
    /// load balancer, an instance with most workers gone should.
    static let defaultShare = 0.5

    /// "0.75" or "75%", within 0...1.
    static func share(_ text: String) -> Double? {
        let percent = text.hasSuffix("%")
        guard let value = Double(percent ? String(text.dropLast()) : text), value.isFinite else { return nil }
        let share = percent ? value / 100 : value
        return (0...1).contains(share) ? share : nil
    }

    /// Healthy while the supervisor is not draining and at least `readyShare` of the desired workers are
    /// ready (rounded up, and at least one unless the share is 0: 0 asks only that the supervisor answers).
    static func judge(_ reply: JSON, readyShare: Double) -> (healthy: Bool, reason: String) {
        let supervisor = reply["supervisor"]
        let ready = supervisor?["ready"]?.int ?? 0
        let desired = supervisor?["desired"]?.int ?? 0
        let state = supervisor?["state"]?.string ?? "unknown"
        let needed = readyShare == 0 ? 0 : max(1, Int((readyShare * Double(desired)).rounded(.up)))
        let counts = "\(ready)/\(desired) workers ready, \(needed) needed"
        if state == "draining" { return (false, "unhealthy: draining (\(counts))") }
        if ready < needed { return (false, "unhealthy: \(counts) (\(state))") }
        return (true, "healthy: \(counts) (\(state))")
    }
}
