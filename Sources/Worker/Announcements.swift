import WorkerKit

/// The state changes the worker owes its supervisor (`READY=1`, `STOPPING=1`, `STATUS=…`), kept in
/// order until the kernel takes them. The notifier never blocks, so a stopped supervisor with a
/// full queue cannot freeze the event loop; but a lost `READY=1` would leave the slot "starting"
/// until the supervisor's start timeout kills a healthy worker, so unlike `WATCHDOG=1` (dropped
/// when it does not fit: the next one is due in half the interval) these are retried from the
/// loop's timer until they go out.
struct Announcements {
    /// How often a message that did not fit is tried again: the loop wakes this often only while
    /// something is owed and the receiver's queue is full.
    static let retryInterval: UInt64 = 100_000_000

    private(set) var queue: [String] = []
    /// When to try again, or 0 when nothing is owed.
    private(set) var retryAt: UInt64 = 0

    /// Queues `message` behind anything still owed and sends what the receiver will take.
    mutating func announce(_ message: String, now: UInt64, via notifier: Notifier) {
        queue.append(message)
        flush(now: now, via: notifier)
    }

    /// Sends the owed messages in order, stopping at the first one the receiver cannot take yet.
    mutating func flush(now: UInt64, via notifier: Notifier) {
        while let first = queue.first {
            if notifier.send(first) == .wouldBlock {
                retryAt = now + Announcements.retryInterval
                return
            }
            // Sent, or nobody will ever take it (no NOTIFY_SOCKET, the receiver is gone): done with it.
            queue.removeFirst()
        }
        retryAt = 0
    }
}
