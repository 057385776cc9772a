import Glibc
import SupervisorCore

/// The shell's half of a scrape: the pool's snapshot from the core, plus what only the kernel knows —
/// each process's memory and CPU time (/proc/PID/stat, one read per process) and each TCP listener's
/// accept queue (TCP_INFO on a listening socket: `tcpi_unacked` is the queue, `tcpi_sacked` its limit).
struct MetricsCollector {
    /// When the supervisor started, in seconds since the epoch (read once, at start).
    let startTimeSeconds: Double
    let listeners: [Listener]

    init(listeners: [Listener]) {
        self.listeners = listeners
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        startTimeSeconds = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    func snapshot(pool: Pool, at now: Instant) -> MetricsSnapshot {
        var snapshot = MetricsSnapshot(pool: pool, version: version, at: now)
        for index in snapshot.workers.indices {
            if let usage = MetricsCollector.usage(of: snapshot.workers[index].pid) {
                snapshot.workers[index].residentBytes = usage.residentBytes
                snapshot.workers[index].cpuSeconds = usage.cpuSeconds
            }
        }
        if let own = MetricsCollector.usage(of: getpid()) {
            snapshot.residentBytes = own.residentBytes
            snapshot.cpuSeconds = own.cpuSeconds
        }
        snapshot.startTimeSeconds = startTimeSeconds
        snapshot.listeners = listeners.compactMap { listener in
            MetricsCollector.acceptQueue(listener.fd).map {
                MetricsSnapshot.ListenerSample(address: listener.address, queued: $0.queued, limit: $0.limit)
            }
        }
        return snapshot
    }

    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    /// Resident bytes and CPU seconds (user + system) from /proc/PID/stat; nil when the process is gone.
    static func usage(of pid: Int32) -> (residentBytes: UInt64, cpuSeconds: Double)? {
        guard let text = try? Sys.readFile("/proc/\(pid)/stat", limit: 4096),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": field 3 is the state; utime and stime are fields 14 and 15, rss field 24.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 21, let utime = Double(fields[11]), let stime = Double(fields[12]),
              let rss = UInt64(fields[21]) else { return nil }
        return (rss * pageSize, (utime + stime) / ticksPerSecond)
    }

    /// A listening TCP socket's accept queue: connections waiting for accept(), and the backlog.
    /// nil for a Unix socket (no TCP_INFO).
    static func acceptQueue(_ fd: Int32) -> (queued: UInt32, limit: UInt32)? {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0, info.tcpi_state == UInt8(TCP_LISTEN) else { return nil }
        return (info.tcpi_unacked, info.tcpi_sacked)
    }
}
