/// The lame-duck delay (`lame_duck`): on a stop signal the pool first reports not-ready and keeps serving,
/// so a load balancer or Kubernetes' endpoint controller takes the node out before any worker stops
/// accepting; only then the normal drain begins. Without it, requests routed in the seconds before the
/// balancer notices would meet closed sockets.
extension Pool {
    /// A stop signal (SIGTERM, SIGINT, SIGQUIT): the lame-duck delay when configured and there is something
    /// to serve, else the drain at once. A second signal during the delay drains at once; one during the
    /// drain kills (as before).
    mutating func stopRequested(by signal: Signal, at now: Instant) -> [Action] {
        let name = SignalName.of(signal.rawValue)
        switch phase {
        case .stopping:
            return killAll(reason: "second \(name)")
        case .lameDuck:
            return beginStop(exitCode: 0, reason: "second \(name) during the lame-duck delay", at: now)
        case .exited:
            return []
        case .starting, .running:
            guard policy.lameDuck > .zero, !workers.isEmpty else {
                return beginStop(exitCode: 0, reason: "\(name) received", at: now)
            }
            return beginLameDuck(reason: "\(name) received", at: now)
        }
    }

    private mutating func beginLameDuck(reason: String, at now: Instant) -> [Action] {
        phase = .lameDuck(until: now + policy.lameDuck)
        // Restarts and rolls go on (the workers keep serving); systemd's stop timeout must cover both waits.
        let extend = policy.lameDuck + policy.gracefulTimeout + .seconds(5)
        return [
            .report(PoolEvent(.stopping, .notice, "\(reason): lame duck for \(policy.lameDuck.spoken) (reporting not-ready, still serving), then draining; send it again to drain now")),
            .notifySystemd([.extendTimeout(extend)]),
        ]
    }

    /// The lame-duck delay is over: the drain begins (`Deadline.lameDuckEnd`).
    mutating func lameDuckEnded(at now: Instant) -> [Action] {
        guard phase.lameDuckEnd != nil else { return [] }
        return beginStop(exitCode: 0, reason: "lame-duck delay (\(policy.lameDuck.spoken)) over", at: now)
    }
}
