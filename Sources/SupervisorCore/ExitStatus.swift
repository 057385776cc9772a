/// How a worker process ended, as waitpid reported it.
public enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// SIGKILL from the kernel's OOM killer: the worker's cgroup counted an `oom_kill`, or the kernel's
    /// log named its pid. The shell tells it apart; the pool reports it as `oom` everywhere.
    case oomKilled

    public var description: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let signal): return "killed by \(SignalName.of(signal))"
        case .oomKilled: return "killed by the kernel's OOM killer (out of memory)"
        }
    }

    /// The failure this exit is by itself, whatever the pool knew: nil when only the context can tell.
    public var failureCause: FailureReason? { self == .oomKilled ? .oom : nil }
}
