import CHyperglass
import SupervisorCore

/// Looks at the listeners' accept queues (`backlog_wait`, Pool+Backlog.swift): their length from TCP_INFO or
/// sock_diag, one getsockopt each; and when connections wait (or `connectionsTaken`: always), a TCP listener's
/// oldest wait and the connections its workers took, from one sock_diag dump that the kernel filters down
/// to the listener's port.
enum BacklogProbe {
    static func sample(_ listeners: [Listener], connectionsTaken: Bool = false) -> [ListenerBacklog] {
        listeners.compactMap { listener in
            var limit: Int32 = 0
            let waiting = hg_listen_queue(listener.fd, &limit)
            // A kernel that answers neither way: nothing to judge, rather than a guess.
            guard waiting >= 0 else { return nil }
            var unknown: Int32 = 0
            guard waiting > 0 || connectionsTaken else { return ListenerBacklog(address: listener.address, waiting: 0, oldestWait: nil, limit: Int(limit)) }
            let (milliseconds, taken) = connectionsTaken ? look(listener.fd, waiting) : (hg_listen_oldest_wait_ms(listener.fd, waiting, nil, 0, &unknown), nil)
            // -1: the queue emptied between the two looks; the length alone stands for it.
            if waiting == 0 || milliseconds == -1 {
                return ListenerBacklog(address: listener.address, waiting: 0, oldestWait: nil, limit: Int(limit), taken: taken)
            }
            // No age (a unix listener): which connections wait, so that the watch can time each one itself.
            let queued = milliseconds == -2 ? unixQueued(listener.fd) : nil
            return ListenerBacklog(address: listener.address, waiting: Int(waiting), oldestWait: milliseconds >= 0 ? .milliseconds(milliseconds) : nil,
                                   limit: Int(limit), taken: taken, queued: queued)
        }
    }

    /// A unix listener's queued connections (their client ends' inodes); nil when the kernel does not tell.
    private static func unixQueued(_ fd: Int32) -> Set<UInt64>? {
        var capacity = 4096
        for _ in 0..<2 {
            var ids = [UInt64](repeating: 0, count: capacity)
            let count = Int(hg_unix_queued(fd, &ids, Int32(capacity)))
            if count < 0 { return nil }
            // 0: a client that closed its end while queued (its inode is gone); no identity to time it by.
            if count <= capacity { return Set(ids.prefix(count)).subtracting([0]) }
            capacity = count + 4096
        }
        return nil
    }

    /// One dump: the oldest wait in ms (-1 none waits, -2 unknown) and the cookies of the connections taken
    /// (nil when the dump did not tell them all). A second dump, with room, when the first found more.
    private static func look(_ fd: Int32, _ waiting: Int32) -> (Int, Set<UInt64>?) {
        // Room for a busy port's open and TIME_WAIT connections at once (128 KB, for a proving look only).
        var capacity = 16384
        var milliseconds = -2
        for _ in 0..<2 {
            var ids = [UInt64](repeating: 0, count: capacity)
            var count: Int32 = 0
            milliseconds = hg_listen_oldest_wait_ms(fd, waiting, &ids, Int32(capacity), &count)
            if count <= capacity { return (milliseconds, count >= 0 ? Set(ids.prefix(Int(count))) : nil) }
            capacity = Int(count) + 4096
        }
        return (milliseconds, nil)
    }
}
