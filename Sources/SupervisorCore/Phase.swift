/// Where the pool is in its life.
public enum Phase: Equatable, Sendable {
    /// Until every desired worker has been ready once; READY=1 goes to systemd at the end.
    case starting
    case running
    /// Draining every worker; exit with `exitCode` when the last one is gone.
    case stopping(exitCode: Int32)
    case exited

    /// Starting or running: workers are kept alive, restarted and replaced; after that, only drained.
    public var isActive: Bool { self == .starting || self == .running }
}
