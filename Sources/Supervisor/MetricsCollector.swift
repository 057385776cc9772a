import Glibc
import SupervisorCore
import SystemCalls

/// The shell's half of a scrape: the pool's snapshot from the core, plus what only the kernel knows —
/// each process's memory and CPU time (/proc/PID/stat, one read per process) and each listener's
/// accept queue and oldest wait (BacklogProbe).
final class MetricsCollector {
    /// When the supervisor started, in seconds since the epoch (read once, at start; an upgrade's new
    /// program moves it back to the first start, Takeover.swift).
    var startTimeSeconds: Double

    init() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        startTimeSeconds = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// How long a rendered `/metrics` text is served again. Prometheus scrapes every 15 s or so; a
    /// client scraping faster gets the same text, so a flood on the unauthenticated listener costs the
    /// loop one render (a /proc read per worker) a second, and each scrape only a copy of the text.
    static let scrapeMaxAge: Duration = .seconds(1)

    /// The last scrape's text and when it was rendered.
    private var published: (text: String, renderedAt: Instant)?

    /// The text for `/metrics`: the published one while it is younger than `scrapeMaxAge`, else a fresh one.
    func scrape(pool: Pool, at now: Instant) -> String {
        if let published, now - published.renderedAt < MetricsCollector.scrapeMaxAge { return published.text }
        let text = PrometheusText.render(snapshot(pool: pool, at: now))
        published = (text, now)
        return text
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
        // The pool's last look (EventLoop.lookAtBacklog, at most one per 100 ms): a look at a stalled queue is a
        // sock_diag dump of milliseconds, which a flood of `metrics` requests must not repeat per answer.
        snapshot.listeners = pool.backlog.listeners
        return snapshot
    }

    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    /// Resident bytes and CPU seconds (user + system) from /proc/PID/stat; nil when the process is gone.
    /// Read and parsed as bytes: with 64 workers a scrape reads 65 of these, and String indexing cost
    /// more than the reads (perf: most of the scrape's 2 ms went to Character-wise `lastIndex`/`split`).
    static func usage(of pid: Int32) -> (residentBytes: UInt64, cpuSeconds: Double)? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var count = 0
        while count < buffer.count,
              case .bytes(let n) = buffer.withUnsafeMutableBytes({ Sys.read(fd, UnsafeMutableRawBufferPointer(rebasing: $0[count...])) }) {
            count += n
        }
        Sys.close(fd)
        return parseStat(buffer[0..<count])
    }

    /// utime and stime (fields 14 and 15) and rss (field 24, pages) of a /proc/PID/stat line. The command
    /// name in parentheses may hold spaces and parentheses, so fields are counted after the last ')'.
    static func parseStat(_ bytes: ArraySlice<UInt8>) -> (residentBytes: UInt64, cpuSeconds: Double)? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        var field = 2  // the one ending at ')'
        var value: UInt64 = 0
        var inNumber = false
        var utime: UInt64 = 0, stime: UInt64 = 0
        for byte in bytes[(close + 1)...] {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                if inNumber {
                    switch field {
                    case 14: utime = value
                    case 15: stime = value
                    case 24: return (value * pageSize, Double(utime + stime) / ticksPerSecond)
                    default: break
                    }
                }
                inNumber = false
                continue
            }
            if !inNumber { inNumber = true; field += 1; value = 0 }
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { value = value &* 10 &+ UInt64(byte - UInt8(ascii: "0")) }
        }
        return nil
    }
}
