/// What the shell may ask before it performs a spawn it had to defer.
extension Pool {
    /// Whether a worker for this slot and generation would still be taken in by `spawned`. Spawns are
    /// asynchronous (the exec result is an event, and a big scale-up is spread over several loop turns),
    /// so a scale-down, a stop or an aborted roll may come between the `spawn` action and its start.
    /// A generation no spawn of slot `id` has used yet. Spawns are answered on a later loop turn: a roll
    /// that numbered its successor `generation + 1` while the slot's own start was still under way gave both
    /// one number, and the late answer was taken for the successor (found by the property test's late spawns).
    mutating func newGeneration(for id: Int) -> Int {
        let next = max(slots[id].generation, slots[id].askedGeneration) + 1
        slots[id].askedGeneration = next
        return next
    }

    public func wantsSpawn(slot: Int, generation: Int) -> Bool {
        guard phase.isActive, slots.indices.contains(slot) else { return false }
        let current = slots[slot]
        if let successor = current.successor, successor.generation == generation { return successor.pid == nil }
        return current.pid == nil && current.generation < generation
    }
}
