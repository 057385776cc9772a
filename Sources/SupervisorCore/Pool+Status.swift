/// What the pool tells systemd and the log about itself.
extension Pool {
    /// READY=1 once every desired worker has been ready; a log line whenever the pool becomes whole again.
    mutating func poolReadiness() -> [Action] {
        guard isSettled, phase.isActive else {
            allReadyLogged = false
            return []
        }
        var actions: [Action] = []
        if !allReadyLogged {
            allReadyLogged = true
            scalingFrom = nil
            actions.append(.log(.notice, "\(readyCount)/\(desired) workers ready"))
        }
        if phase == .starting {
            phase = .running
            actions.append(.notifySystemd([.ready]))
        }
        return actions
    }

    /// A STATUS= line when the words changed since the last one.
    mutating func statusUpdate(at now: Instant) -> [Action] {
        let text = statusText(at: now)
        guard text != lastStatus else { return [] }
        lastStatus = text
        return [.notifySystemd([.status(text)])]
    }

    /// The one-line state an operator sees in `systemctl status`: "3/4 workers ready; restarting worker 2 in 4s (exit status 1)".
    public func statusText(at now: Instant) -> String {
        switch phase {
        case .stopping, .exited:
            let n = workers.count
            return n == 0 ? "stopped" : "draining \(n) worker\(n == 1 ? "" : "s")"
        case .lameDuck(let until):
            let wait = until > now ? until - now : .zero
            return "lame duck: draining in \(wait.roundedUpSeconds) s; \(readyCount)/\(desired) workers ready"
        case .starting, .running:
            var text = "\(readyCount)/\(desired) workers ready"
            if let from = scalingFrom { text = "scaling \(from) → \(desired): " + text }
            if let note = scalingNote { text += "; " + note }
            // The same line `reload --wait` shows, so `systemctl status` follows a roll as it advances.
            if let progress = rollProgress { text = progress.summary + "; " + text }
            else if let lastRoll, !lastRoll.succeeded { text += "; " + lastRoll.summary }
            if let stall = backlogStall { text += "; " + stall.description }
            if let preparing = upgradePreparation { text += "; checking \(preparing.shown) for an upgrade in place" }
            if let looping = crashLoopingSlots.first {
                text += "; crash loop in worker \(looping.id) (\(looping.failures) failures in a row, last: \(looping.lastFailure ?? "unknown"))"
            } else if let next = slots.filter({ $0.restartAt != nil }).min(by: { $0.restartAt! < $1.restartAt! }),
                      let due = next.restartAt {
                let wait = due > now ? (due - now) : .zero
                text += "; restarting worker \(next.id) in \(wait.roundedUpSeconds)s (\(next.lastFailure ?? "failed"))"
            }
            return text
        }
    }
}

extension Duration {
    /// Whole seconds, rounded up, for countdowns ("in 4s").
    var roundedUpSeconds: Int64 { (nanoseconds + 999_999_999) / 1_000_000_000 }
}
