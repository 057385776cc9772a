import ControlProtocol
import Glibc

/// `hyperglassctl health`: the pool as an orchestrator's exec probe or a `HEALTHCHECK` needs it, one
/// exit status and one line. Built on the status reply, so it needs nothing the supervisor lacks.
enum HealthCheck {
    /// The same default as the supervisor's `/readyz` (ControlProtocol/ReadyShare.swift).
    static let defaultShare = ReadyShare.defaultShare

    /// "0.75" or "75%", within 0...1.
    static func share(_ text: String) -> Double? {
        let percent = text.hasSuffix("%")
        guard let value = Double(percent ? String(text.dropLast()) : text), value.isFinite else { return nil }
        let share = percent ? value / 100 : value
        return (0...1).contains(share) ? share : nil
    }

    /// Healthy while the supervisor is neither a lame duck nor draining and at least `readyShare` of the desired workers are
    /// ready (rounded up, and at least one unless the share is 0: 0 asks only that the supervisor answers).
    static func judge(_ reply: JSON, readyShare: Double) -> (healthy: Bool, reason: String) {
        let supervisor = reply["supervisor"]
        let ready = supervisor?["ready"]?.int ?? 0
        let desired = supervisor?["desired"]?.int ?? 0
        let state = supervisor?["state"]?.string ?? "unknown"
        let needed = readyShare == 0 ? 0 : max(1, Int((readyShare * Double(desired)).rounded(.up)))
        let counts = "\(ready)/\(desired) workers ready, \(needed) needed"
        // A lame duck still serves but wants out of the load balancer before it drains.
        if state == "draining" || state == "lame-duck" { return (false, "unhealthy: \(state) (\(counts))") }
        if ready < needed { return (false, "unhealthy: \(counts) (\(state))") }
        return (true, "healthy: \(counts) (\(state))")
    }
}
