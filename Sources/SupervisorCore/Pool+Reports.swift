/// A roll's end as a `PoolEvent`, found by comparing the last outcome before and after an event, so every
/// way a roll ends (done, failed, rolled back, refused, interrupted by a stop) is reported once, with its
/// duration measured from its start (a rollback continues its reload).
extension Pool {
    mutating func rollReports(_ actions: [Action], outcomeBefore: RollOutcome?, at now: Instant) -> [Action] {
        var actions = actions
        // Its start was reported by `beginRoll`; a rollback keeps the id, and the clock, of its reload.
        if let roll, roll.kind != .rollback, timedRoll?.id != roll.id { timedRoll = (roll.id, roll.startedAt) }
        if let outcome = lastRoll, outcome != outcomeBefore {
            let began = timedRoll?.id == outcome.id ? timedRoll!.startedAt : now
            if timedRoll?.id == outcome.id { timedRoll = nil }
            let level: LogLevel = outcome.succeeded ? .notice : .error
            actions = adopt(actions, matching: { $0 == outcome.summary },
                            as: PoolEvent(.rollEnded, level, outcome.summary, roll: outcome.kind, succeeded: outcome.succeeded, duration: now - began))
        }
        return actions
    }

    /// Turns the log line that already tells of `report` into the report itself, keeping its place and
    /// words; appends the report when no line matches (a stop interrupting a roll logs no summary).
    private func adopt(_ actions: [Action], matching: (String) -> Bool, as report: PoolEvent) -> [Action] {
        var actions = actions
        for index in actions.indices {
            guard case let .log(level, message) = actions[index], matching(message) else { continue }
            var found = report
            found.level = level
            found.message = message
            actions[index] = .report(found)
            return actions
        }
        actions.append(.report(report))
        return actions
    }
}
