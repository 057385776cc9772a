@testable import ControlProtocol
import Glibc
import Testing
import SupervisorCore
@testable import Supervisor

@Suite("StatusReport and StatusTable", .timeLimit(.minutes(1)))
struct StatusReportTests {
    static let epoch = Instant(nanoseconds: 1_000_000_000_000)

    /// Two slots: slot 0 runs (as this test process, so /proc has something to say), slot 1's worker exited.
    static func pool() -> Pool {
        var pool = Pool(desired: 2, policy: PoolPolicy())
        _ = pool.handle(.started, at: epoch)
        _ = pool.handle(.spawned(slot: 0, generation: 1, pid: getpid()), at: epoch)
        _ = pool.handle(.spawned(slot: 1, generation: 1, pid: 999_999_999), at: epoch)
        _ = pool.handle(.exited(pid: 999_999_999, status: .exited(3)), at: epoch + .seconds(2))
        return pool
    }

    @Test("the report carries the pool's counts, each slot's worker and the last exit of a slot without one")
    func report() {
        let json = StatusReport.json(pool: Self.pool(), startedAt: Self.epoch, now: Self.epoch + .seconds(75))
        let supervisor = json["supervisor"]!
        #expect(json["ok"] == .bool(true))
        #expect(supervisor["desired"]?.int == 2 && supervisor["ready"]?.int == 1)
        #expect(supervisor["uptime_seconds"]?.number == 75)
        #expect(supervisor["state"]?.string == "running")
        let workers = json["workers"]?.array ?? []
        #expect(workers.count == 2)
        #expect(workers.first?["pid"]?.int == Int(getpid()))
        #expect(workers.first?["state"]?.string == "ready")
        #expect((workers.first?["rss_bytes"]?.number ?? 0) > 0)
        #expect(workers.last?["pid"] == .null)
        #expect(workers.last?["last_exit"]?.string == "exit status 3")
        #expect(workers.last?["restarts"]?.int == 1)
    }

    @Test("the table an operator reads: the summary line, then one aligned row per worker")
    func table() {
        let text = StatusTable.render(StatusReport.json(pool: Self.pool(), startedAt: Self.epoch, now: Self.epoch + .seconds(75)))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("supervisor  pid \(getpid())  running  up 1m15s  1/2 workers ready  rss "))
        let header = lines.first { $0.hasPrefix("ID") }!
        let rows = lines.filter { $0.hasPrefix("0 ") || $0.hasPrefix("1 ") }
        #expect(rows.count == 2)
        // Columns line up under the header.
        let offset = Array(header).indices.first { Array(header)[$0...].starts(with: "RESTARTS") }!
        for row in rows { #expect(Array(row)[offset] != " " && Array(row)[offset - 1] == " ", "\(row)") }
        #expect(rows[1].contains("exit status 3"))
    }

    @Test("each listener's accept queue, as looked at for the reply, on one line; a stall in the status line and in backlog_stall")
    func listenersLine() {
        var pool = Self.pool()
        _ = pool.handle(.backlogSampled([ListenerBacklog(address: "127.0.0.1:8001", waiting: 0, oldestWait: nil),
                                         ListenerBacklog(address: "unix:/run/app.sock", waiting: 3, oldestWait: nil),
                                         ListenerBacklog(address: "[::1]:8002", waiting: 2, oldestWait: .milliseconds(2460))]), at: Self.epoch + .seconds(75))
        let json = StatusReport.json(pool: pool, startedAt: Self.epoch, now: Self.epoch + .seconds(75))
        let text = StatusTable.render(json)
        #expect(text.contains("\nlisteners   127.0.0.1:8001 (0 waiting), unix:/run/app.sock (3 waiting, the oldest 0.0s), [::1]:8002 (2 waiting, the oldest 2.5s)\n"), "\(text)")
        #expect(json["supervisor"]?["backlog_stall"]?.string == "2 connections on [::1]:8002 waiting unaccepted, the oldest for 2.5s (backlog_wait): no worker takes them")
        #expect(text.contains("status      1/2 workers ready; 2 connections on [::1]:8002 waiting unaccepted"), "\(text)")
    }

    @Test("durations and sizes in the table")
    func units() {
        #expect(StatusTable.duration(.number(59)) == "59s")
        #expect(StatusTable.duration(.number(0.5)) == "500ms", "a sub-second min_ready is not 0s")
        #expect(StatusTable.duration(.number(0)) == "0s")
        #expect(StatusTable.duration(.number(65)) == "1m05s")
        #expect(StatusTable.duration(.number(3 * 3600 + 4 * 60)) == "3h04m")
        #expect(StatusTable.duration(.number(2 * 86400 + 5 * 3600)) == "2d5h")
        #expect(StatusTable.duration(nil) == "-")
        #expect(StatusTable.bytes(.number(5 * 1_048_576 + 300_000)) == "5.3 MiB")
        #expect(StatusTable.bytes(.number(64 * 1_048_576)) == "64 MiB")
    }
}
