import CHyperglass
import SupervisorCore

/// Looks at the listeners' accept queues (`backlog_wait`, Pool+Backlog.swift): their length from TCP_INFO or
/// sock_diag, one getsockopt each; and only when connections wait, a TCP listener's oldest wait, from a
/// sock_diag dump that the kernel filters down to the listener's port.
enum BacklogProbe {
    static func sample(_ listeners: [Listener]) -> [ListenerBacklog] {
        listeners.compactMap { listener in
            var limit: Int32 = 0
            let waiting = hg_listen_queue(listener.fd, &limit)
            // A kernel that answers neither way: nothing to judge, rather than a guess.
            guard waiting >= 0 else { return nil }
            var oldest: Duration? = nil
            if waiting > 0 {
                let milliseconds = hg_listen_oldest_wait_ms(listener.fd)
                if milliseconds >= 0 { oldest = .milliseconds(milliseconds) }
                // -1: the queue emptied between the two looks; the length alone stands for it.
                if milliseconds == -1 { return ListenerBacklog(address: listener.address, waiting: 0, oldestWait: nil, limit: Int(limit)) }
            }
            return ListenerBacklog(address: listener.address, waiting: Int(waiting), oldestWait: oldest, limit: Int(limit))
        }
    }
}
