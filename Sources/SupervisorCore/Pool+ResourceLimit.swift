/// Spawns that fail for want of the supervisor's own resources (EMFILE, ENFILE, EAGAIN, ENOMEM): the
/// system said "not now", the release did nothing wrong. Counted as crashes they made a crash loop (and,
/// with `crash_loop = exit`, stopped the whole pool) out of a pool merely larger than the limits; and the
/// autoscaler kept growing into them (issue 25, item 4). So: no failure is counted, the slot retries after
/// the maximum backoff, and the pool does not grow until every slot has a worker again.
extension Pool {
    mutating func spawnLimited(slot: Int, generation: Int, reason: String, at now: Instant) -> [Action] {
        if slots.indices.contains(slot), slots[slot].successor?.generation == generation {
            // A roll cannot go on without room for the successor; the old worker keeps serving.
            return [.report(PoolEvent(.spawnFailed, .error, "worker \(slot)'s successor could not start: \(reason)",
                                      slot: slot, generation: generation, reason: .failedStart))]
                + successorFailed(slot, reason: "could not start: \(reason)", cause: .failedStart, at: now)
        }
        guard phase.isActive, slots.indices.contains(slot), slots[slot].generation < generation else { return [] }
        slots[slot].generation = generation
        slots[slot].waitingForResources = true
        slots[slot].lastFailure = reason
        let delay = policy.backoff.maximum
        slots[slot].restartAt = now + delay
        return [.report(PoolEvent(.spawnFailed, .warning,
                                  "worker \(slot) could not start: \(reason): a resource limit, not a crash; retrying in \(delay.spoken), and the pool does not grow meanwhile",
                                  slot: slot, generation: generation))]
    }

    /// The slot that waits for resources, if any: while one does, the pool does not grow.
    public var slotWaitingForResources: Slot? { slots.first { $0.waitingForResources } }
}
