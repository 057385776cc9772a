/// Where the pool is in its life.
public enum Phase: Equatable, Sendable {
    /// Until every desired worker has been ready once; READY=1 goes to systemd at the end.
    case starting
    case running
    /// A stop signal arrived with `lame_duck` set: the pool says not-ready (so load balancers take the node
    /// out) but keeps serving, restarting and supervising as before until `until`, then drains.
    case lameDuck(until: Instant)
    /// Draining every worker; exit with `exitCode` when the last one is gone.
    case stopping(exitCode: Int32)
    case exited

    /// Starting, running or a lame duck: workers are kept alive, restarted and replaced; after that, only drained.
    public var isActive: Bool {
        switch self {
        case .starting, .running, .lameDuck: true
        case .stopping, .exited: false
        }
    }

    /// Whether the pool should be sent traffic at all (what `/readyz` and `hyperglassctl health` check first).
    public var acceptsTraffic: Bool {
        switch self {
        case .starting, .running: true
        case .lameDuck, .stopping, .exited: false
        }
    }

    /// When the lame-duck delay ends; nil outside it.
    public var lameDuckEnd: Instant? {
        if case .lameDuck(let until) = self { return until }
        return nil
    }
}
