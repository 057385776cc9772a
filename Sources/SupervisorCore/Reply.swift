import ControlProtocol

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
    /// The upgrade was admitted and its preflight runs; the answer comes later (a refusal from the core,
    /// or the exec's own reply).
    case upgradePreparing
}
