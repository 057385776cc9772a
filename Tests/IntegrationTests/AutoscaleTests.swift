import Foundation
import Glibc
import Testing

/// Autoscaling with real processes: a held backlog in the kernel's accept queue grows the pool,
/// quiet brings it back to the floor, and an operator's count pins it.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct AutoscaleTests {
    static let slowWorker = Paths.fixtures + "/slowworker.py"

    /// The supervisor's desired count, from `hyperglassctl workers`.
    func desired(_ supervisor: SupervisorProcess) -> Int? {
        Int(supervisor.ctl(["workers"]).out.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Opens `count` connections that each send a request, so they wait in the accept queue.
    func holdBacklog(port: Int, count: Int) -> [Int32] {
        (0..<count).compactMap { _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(fd); return nil }
            _ = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(fd, $0, strlen($0), 0) }
            return fd
        }
    }

    @Test("a held backlog grows the pool to its ceiling; quiet brings it back to the floor, where sampling stops")
    func growsAndReturns() throws {
        let supervisor = try SupervisorProcess(["--workers", "auto:1-4", "--scale-down-delay", "2s", "--", AutoscaleTests.slowWorker, "--hold", "2"],
                                               worker: nil)
        #expect(eventually(timeout: 15) { supervisor.ctl(["status"]).out.contains("1/1 workers ready; autoscaling 1-4") }, "\(supervisor.log)")
        let clients = holdBacklog(port: supervisor.port, count: 6)
        defer { clients.forEach { close($0) } }
        #expect(clients.count == 6)
        #expect(eventually(timeout: 5) { desired(supervisor) == 4 }, "\(supervisor.log)")
        #expect(supervisor.log.contains("connections waited in the accept queue") || supervisor.log.contains("connection waited in the accept queue"),
                "\(supervisor.log)")
        #expect(eventually(timeout: 5) { supervisor.liveWorkers.count == 4 })
        // 6 requests of 2 s on 4 workers: answered within ~4 s of the growth; then 2 s of quiet before shrinking.
        #expect(eventually(timeout: 15) { desired(supervisor) == 1 }, "\(supervisor.log)")
        #expect(supervisor.log.contains("quiet for 2s: nothing queued"), "\(supervisor.log)")
        #expect(eventually(timeout: 5) { supervisor.liveWorkers.count == 1 }, "the removed workers drain and exit")

        // At the floor and quiet: from the next sample on (1 s), no more samples, no wake-ups.
        Thread.sleep(forTimeInterval: 1.5)
        let before = contextSwitches(supervisor.pid)
        Thread.sleep(forTimeInterval: 3)
        let woke = contextSwitches(supervisor.pid) - before
        #expect(woke <= 1, "the supervisor woke \(woke) times in 3 s idle at its floor")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(supervisor.noWorkerLeft)
    }

    @Test("a backlog on a unix-socket listener grows the pool too (sock_diag's queue length)")
    func unixListenerGrows() throws {
        let directory = Paths.temporaryDirectory()
        let path = directory + "/http.sock"
        let supervisor = try SupervisorProcess(["--bind", "unix:" + path, "--workers", "auto:1-3", "--scale-down-delay", "2s",
                                                "--", AutoscaleTests.slowWorker, "--hold", "2"], worker: nil, directory: directory)
        #expect(eventually { supervisor.liveWorkers.count == 1 }, "\(supervisor.log)")
        let clients: [Int32] = (0..<4).compactMap { _ in
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in _ = path.utf8CString.withUnsafeBytes { raw.copyMemory(from: $0) } }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else { close(fd); return nil }
            _ = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(fd, $0, strlen($0), 0) }
            return fd
        }
        defer { clients.forEach { close($0) } }
        #expect(clients.count == 4)
        #expect(eventually(timeout: 5) { desired(supervisor) == 3 }, "\(supervisor.log)")
        #expect(supervisor.log.contains("waited in the accept queue"), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(supervisor.noWorkerLeft)
    }

    @Test("workers N pins the count (status says so) until workers auto, which needs autoscaling on")
    func pinning() throws {
        let supervisor = try SupervisorProcess(["--workers", "auto:1-4", "--scale-down-delay", "2s", "--", AutoscaleTests.slowWorker], worker: nil)
        #expect(eventually { supervisor.liveWorkers.count == 1 }, "\(supervisor.log)")
        #expect(supervisor.ctl(["workers", "3"]).status == 0)
        #expect(eventually { supervisor.liveWorkers.count == 3 })
        let status = supervisor.ctl(["status"]).out
        #expect(status.contains("autoscaling 1-4 paused: pinned at 3 (hyperglassctl workers auto resumes)"), "\(status)")
        // Pinned: 3 s of quiet (past the 2 s delay) do not shrink it.
        Thread.sleep(forTimeInterval: 3)
        #expect(desired(supervisor) == 3)
        let resumed = supervisor.ctl(["workers", "auto"])
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("autoscaling 1-4"), "\(resumed.out)")
        #expect(eventually(timeout: 8) { desired(supervisor) == 1 }, "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)

        let fixed = try SupervisorProcess(["--workers", "1"])
        #expect(eventually { fixed.liveWorkers.count == 1 })
        let refused = fixed.ctl(["workers", "auto"])
        #expect(refused.status == 1)
        #expect(refused.err.contains("autoscaling is off; set workers = auto:MIN-MAX"), "\(refused.err)")
        fixed.signal(SIGTERM)
        #expect(fixed.waitForExit(timeout: 10) == 0)
    }
}

/// Voluntary + involuntary context switches of every thread of a process: its wake-ups.
func contextSwitches(_ pid: Int32) -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.reduce(0) { sum, task in
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)) ?? ""
        return sum + text.split(separator: "\n").filter { $0.hasPrefix("voluntary_ctxt_switches") || $0.hasPrefix("nonvoluntary_ctxt_switches") }
            .compactMap { Int($0.split(separator: "\t").last ?? "") }.reduce(0, +)
    }
}
