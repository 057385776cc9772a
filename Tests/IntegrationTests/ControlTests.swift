import Foundation
import Glibc
import Testing

/// A raw connection to a Unix socket, for clients that misbehave on purpose.
func unixConnect(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        let bytes = Array(path.utf8.prefix(raw.count - 1))
        raw.copyBytes(from: bytes + [0])
    }
    let ok = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if ok != 0 { close(fd); return -1 }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// Reads until the peer closes or a newline arrives; bounded by the socket's receive timeout.
func readLine(_ fd: Int32) -> String {
    var received: [UInt8] = []
    var byte: UInt8 = 0
    for _ in 0..<1_000_000 {
        if recv(fd, &byte, 1, 0) != 1 || byte == 0x0A { break }
        received.append(byte)
    }
    return String(decoding: received, as: UTF8.self)
}

@Suite(.serialized, .timeLimit(.minutes(3)))
struct ControlTests {
    @Test("status and status --json agree with /proc")
    func statusMatchesProc() throws {
        let supervisor = try SupervisorProcess(["--workers", "3"])
        #expect(eventually { supervisor.liveWorkers.count == 3 && supervisor.startedWorkers.count == 3 })
        // Ready means accepting (the default readiness), a moment after exec.
        #expect(eventually { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":3") })
        let result = supervisor.ctl(["status", "--json"])
        #expect(result.status == 0, "\(result.err)")
        let json = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any]
        let top = json?["supervisor"] as? [String: Any]
        #expect(top?["pid"] as? Int == Int(supervisor.pid))
        #expect(top?["desired"] as? Int == 3)
        #expect(top?["ready"] as? Int == 3)
        #expect(top?["state"] as? String == "running")
        let workers = json?["workers"] as? [[String: Any]] ?? []
        let pids = workers.compactMap { $0["pid"] as? Int }.map(Int32.init).sorted()
        #expect(pids == supervisor.liveWorkers, "status must list exactly the supervisor's children")
        for worker in workers {
            let pid = Int32(worker["pid"] as? Int ?? 0)
            let procRSS = (ProcFS.status(pid, field: "VmRSS")?.split(separator: " ").first).flatMap { Double($0) }.map { $0 * 1024 } ?? 0
            let reported = worker["rss_bytes"] as? Double ?? Double(worker["rss_bytes"] as? Int ?? 0)
            #expect(abs(reported - procRSS) <= max(procRSS * 0.2, 1_048_576), "RSS of \(pid): \(reported) vs /proc \(procRSS)")
            #expect(worker["state"] as? String == "ready")
        }
        let table = supervisor.ctl(["status"])
        #expect(table.status == 0)
        #expect(table.out.contains("supervisor  pid \(supervisor.pid)  running"))
        for pid in supervisor.liveWorkers { #expect(table.out.contains(" \(pid) "), "\(table.out)") }
    }

    @Test("workers 16 then workers 2 reach 16 and then 2 live workers; the removed ones got SIGTERM")
    func scaleUpAndDown() throws {
        let supervisor = try SupervisorProcess(["--workers", "2"])
        #expect(eventually { supervisor.liveWorkers.count == 2 })
        let up = supervisor.ctl(["workers", "16", "--wait"])
        #expect(up.status == 0, "\(up.err)")
        #expect(up.out == "16/16 workers ready\n")
        #expect(supervisor.liveWorkers.count == 16)
        #expect(supervisor.ctl(["workers"]).out == "16\n")
        #expect(eventually(timeout: 10) { supervisor.startedWorkers.count == 16 })
        let removed = supervisor.records.filter { line in
            guard let id = line.split(separator: " ").first(where: { $0.hasPrefix("id=") }).flatMap({ Int($0.dropFirst(3)) }) else { return false }
            return id >= 2 && line.contains(" started ")
        }.compactMap { Int32($0.prefix { $0 != " " }) }
        let down = supervisor.ctl(["workers", "2", "--wait"])
        #expect(down.status == 0, "\(down.err)")
        #expect(eventually { supervisor.liveWorkers.count == 2 })
        #expect(removed.count == 14)
        for pid in removed { #expect(supervisor.records.contains("\(pid) signal 15"), "worker \(pid) must have been drained with SIGTERM") }
        #expect(supervisor.ctl(["workers", "+1", "--wait"]).status == 0)
        #expect(supervisor.liveWorkers.count == 3)
        #expect(supervisor.ctl(["workers", "-1", "--wait"]).status == 0)
        #expect(eventually { supervisor.liveWorkers.count == 2 })
        #expect(supervisor.log.contains("scaling 2 → 16"))
    }

    @Test("out-of-range and garbage arguments give exit 1 or 2 with a message")
    func badArguments() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--max-workers", "8"])
        #expect(eventually { supervisor.liveWorkers.count == 1 })
        let zero = supervisor.ctl(["workers", "0"])
        #expect(zero.status == 1 && zero.err.contains("out of range"), "\(zero)")
        let tooMany = supervisor.ctl(["workers", "9"])
        #expect(tooMany.status == 1 && tooMany.err.contains("max_workers (8)"), "\(tooMany)")
        let garbage = supervisor.ctl(["workers", "lots"])
        #expect(garbage.status == 2 && garbage.err.contains("not a worker count"), "\(garbage)")
        let unknown = supervisor.ctl(["frobnicate"])
        #expect(unknown.status == 2 && unknown.err.contains("unknown command"))
        let nobody = runProgram(Paths.products + "/hyperglassctl", ["--socket", supervisor.directory + "/absent.sock", "ping"])
        #expect(nobody.status == 3 && nobody.err.contains("no supervisor is listening"), "\(nobody)")
        #expect(supervisor.liveWorkers.count == 1)
    }

    @Test("hostile clients get an error or are dropped; the supervisor keeps serving and leaks no fd")
    func hostileClients() throws {
        let supervisor = try SupervisorProcess(["--workers", "1"])
        #expect(eventually { supervisor.liveWorkers.count == 1 && supervisor.ctl(["ping"]).status == 0 })
        // The ping's connection closes on the supervisor's side a moment after the client exits.
        var baseline = supervisor.openFDs
        _ = eventually(timeout: 2) {
            usleep(100_000)
            let now = supervisor.openFDs
            defer { baseline = now }
            return now == baseline
        }
        func healthy() -> Bool {
            let start = Date()
            let result = supervisor.ctl(["status"])
            return result.status == 0 && Date().timeIntervalSince(start) < 2
        }

        // Random bytes, newline-terminated: an error reply.
        var fd = unixConnect(supervisor.controlSocket)
        var junk = (0..<4096).map { _ in UInt8.random(in: 0...255) }.filter { $0 != 0x0A } + [0x0A]
        _ = send(fd, &junk, junk.count, Int32(MSG_NOSIGNAL))
        #expect(readLine(fd).contains("\"ok\":false"))
        close(fd)
        #expect(healthy())

        // A 10 MB line: refused once it passes the limit, connection closed.
        fd = unixConnect(supervisor.controlSocket)
        var big = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        for _ in 0..<10 where send(fd, &big, big.count, Int32(MSG_NOSIGNAL)) > 0 {}
        #expect(readLine(fd).contains("longer than"))
        close(fd)
        #expect(healthy())

        // Half a line, then silence: an error after the line timeout, and the connection is closed.
        fd = unixConnect(supervisor.controlSocket)
        var half = Array("{\"v\":1,\"cmd\":\"sta".utf8)
        _ = send(fd, &half, half.count, Int32(MSG_NOSIGNAL))
        #expect(healthy(), "a stalled client must not block others")
        #expect(readLine(fd).contains("timed out"))
        close(fd)

        // Hundreds of connections at once from the owner: past the limit the one idle longest gives way, so the
        // owner always gets in (HostileControlTests has the control_group side, where the excess is refused).
        let crowd = (0..<300).map { _ in unixConnect(supervisor.controlSocket) }
        #expect(crowd.filter { $0 >= 0 }.count > 64)
        if let first = crowd.first(where: { $0 >= 0 }) { #expect(readLine(first).contains("make room")) }
        for c in crowd where c >= 0 { close(c) }
        #expect(healthy())

        // A client that disconnects before reading its reply.
        for _ in 0..<20 {
            fd = unixConnect(supervisor.controlSocket)
            var request = Array("{\"v\":1,\"cmd\":\"status\"}\n".utf8)
            _ = send(fd, &request, request.count, Int32(MSG_NOSIGNAL))
            close(fd)
        }
        #expect(healthy())
        #expect(eventually(timeout: 8) { supervisor.openFDs == baseline }, "fds: \(supervisor.openFDs) vs \(baseline) at start")
        #expect(supervisor.liveWorkers.count == 1)
    }

    @Test("a non-root uid outside control_group is refused; a member may read status only", .enabled(if: getuid() == 0, "needs root to switch users"))
    func permissions() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--control-group", "nogroup"])
        #expect(eventually { supervisor.liveWorkers.count == 1 && supervisor.ctl(["ping"]).status == 0 })
        chmod(supervisor.directory, 0o755)
        // The file mode keeps others out before the supervisor even sees them.
        let outsider = supervisor.ctl(["status"], as: (uid: 12345, gid: 12345))
        #expect(outsider.status == 3 && outsider.err.contains("Permission denied"), "\(outsider)")
        // With the file opened up, SO_PEERCRED still refuses them.
        chmod(supervisor.controlSocket, 0o666)
        let refused = supervisor.ctl(["status"], as: (uid: 12345, gid: 12345))
        #expect(refused.status == 1 && refused.err.contains("permission denied: uid 12345"), "\(refused)")
        // A member of control_group reads status but may not change the pool.
        let member = supervisor.ctl(["status"], as: (uid: 12345, gid: 65534))
        #expect(member.status == 0, "\(member)")
        let change = supervisor.ctl(["workers", "3"], as: (uid: 12345, gid: 65534))
        #expect(change.status == 1 && change.err.contains("may only read"), "\(change)")
        #expect(supervisor.liveWorkers.count == 1)
    }
}
