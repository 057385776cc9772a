import ControlProtocol

/// What an operator asks of the pool, by `hyperglassctl` or by a signal that stands for a request (SIGHUP,
/// SIGTTIN, SIGTTOU). The core alone decides whether it may happen now (`Pool.refusal(of:at:)`) and
/// answers with a `Reply`, so a request means the same thing whichever way it arrives.
public enum Intent: Equatable, Sendable {
    /// `workers N|+N|-N`, SIGTTIN (+1), SIGTTOU (-1): the operator's count, which pins autoscaling.
    case workers(WorkerCountChange)
    /// `workers auto`: autoscaling decides the count again.
    case autoscale
    /// `reload`, SIGHUP: re-read the configuration (the shell reads it when the core says `readConfiguration`).
    case reload
    /// `restart ID|all`: replace these slots' workers (nil: every slot), one roll step at a time.
    case restart(slots: [Int]?)
    /// `upgrade [--wait] [PATH]`: replace the supervisor's program in place (the shell checks and execs it
    /// when the core says `execUpgrade`); with `wait` the new program answers.
    case upgrade(path: String?, wait: Bool)

    /// The verb in a refusal: "cannot reload: ...".
    var verb: String {
        switch self {
        case .workers: "change the worker count"
        case .autoscale: "resume autoscaling"
        case .reload: "reload"
        case .restart: "restart"
        case .upgrade: "upgrade"
        }
    }
}

/// Who asked: a control client, answered with `Action.reply`, or a signal, answered in the log.
public enum Requester: Equatable, Sendable {
    /// The client's connection (its fd), for the shell to route the reply.
    case client(Int32)
    case signal(Signal)
}

/// The core's answer to an `Intent`.
public enum Reply: Equatable, Sendable {
    /// Nothing changed, and why (for `{"ok":false}` and exit 1).
    case refused(String)
    /// The desired count is now `desired` (it was `previous`).
    case workers(previous: Int, desired: Int)
    /// Autoscaling is on again; `summary` is its one-line state.
    case autoscaling(previous: Int, desired: Int, summary: String)
    /// Roll `id` began; its outcome is `Pool.lastRoll` once `lastRoll.id == id`.
    case rollStarted(id: Int, summary: String, note: String?)
    /// The roll began and ended at once (nothing to replace, or refused by its configuration).
    case rollEnded(RollOutcome)
}
