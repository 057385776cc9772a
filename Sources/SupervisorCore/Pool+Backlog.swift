/// Whether the workers take the connections that wait on the listeners (`backlog_wait`). `/proc` shows a
/// worker waiting on the socket, not taking from it: a release that polls and never accepts, or whose
/// every worker is wedged, looks ready. The accept queue shows it: connections that wait there while a
/// healthy pool accepts within milliseconds. Readiness (`/readyz`, `health`) and a reload both ask.
extension Pool {
    /// The stall the last look found: connections waiting `backlog_wait` or longer.
    public var backlogStall: BacklogStall? { backlog.stall(limit: policy.health.backlogWait) }

    /// Four looks per `backlog_wait` while a reload proves its workers: a stall is seen at most a quarter late.
    var backlogLookInterval: Duration { max(policy.health.backlogWait / 4, .milliseconds(25)) }

    /// Every slot of a reload took over and its predecessors drain: only now do the new workers serve alone,
    /// so only now does a connection nobody takes show. The reload ends after `backlog_wait` (and one look)
    /// with no connection left waiting that long; one that does, while the looks saw no connection taken for
    /// as long, rolls the reload back. Connections that wait that long though some were taken (a saturated
    /// pool, or workers that took a few and wedged) keep the watch on for one `backlog_wait` more.
    mutating func beginProving(at now: Instant) -> [Action] {
        guard var current = roll else { return [] }
        current.provingUntil = now + policy.health.backlogWait + backlogLookInterval
        current.backlogLookDue = now + backlogLookInterval
        roll = current
        // Whether the new workers take connections is counted from the looks made from now on.
        backlog.forgetTaken()
        return [.log(.info, "reload: every worker replaced; watching for \(policy.health.backlogWait.spoken) (backlog_wait) that the new workers take connections"),
                // systemd's reload timeout covers the watch too, however long backlog_wait is.
                .notifySystemd([.extendTimeout(policy.health.backlogWait * 2 + backlogLookInterval + .seconds(5))])]
    }

    /// The `backlogLook` deadline: ask the shell to look (cleared until the answer comes).
    mutating func backlogLookDue() -> [Action] {
        roll?.backlogLookDue = nil
        return [.sampleBacklog]
    }

    mutating func backlogSampled(_ samples: [ListenerBacklog], at now: Instant) -> [Action] {
        let wasStalled = backlogStall != nil
        backlog.record(samples, at: now)
        let stall = backlogStall
        var actions: [Action] = []
        if let stall, !wasStalled { actions.append(.log(.warning, stall.description)) }
        if stall == nil, wasStalled { actions.append(.log(.notice, "the workers take connections again: none waits \(policy.health.backlogWait.spoken) (backlog_wait) any more")) }
        guard phase.isActive, var current = roll, let until = current.provingUntil else {
            // The account of connections taken is for a reload's watch only (a busy port's runs to thousands).
            backlog.forgetTaken()
            return actions
        }
        // A pool that takes connections, however slowly (saturated: every worker busy), is not a broken one.
        if let stall = backlog.stallTakingNone(limit: policy.health.backlogWait) {
            backlog.forgetTaken()
            return actions + reloadFailed(current, message: "reload failed: the new workers do not take connections (\(stall)); kept the previous version", at: now)
        }
        // Some connection has waited backlog_wait, yet one was taken within it: watch one backlog_wait more, so
        // that workers that took a few connections and wedged are seen taking none, and a saturated pool is not.
        if now >= until, stall == nil || now >= until + policy.health.backlogWait {
            backlog.forgetTaken()
            return actions + completeRoll(current, at: now)
        }
        if current.backlogLookDue == nil {
            current.backlogLookDue = now + backlogLookInterval
            roll = current
        }
        return actions
    }
}
