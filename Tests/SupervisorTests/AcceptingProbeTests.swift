import Foundation
import Glibc
import Testing
import SupervisorCore
@testable import Supervisor

/// The shell's /proc sampler against real processes: each kind of accepting it knows, a process that holds
/// the socket without accepting, a forked child that accepts for its parent, and a pid that is gone.
@Suite("AcceptingProbe: what /proc shows of a process accepting", .serialized, .timeLimit(.minutes(1)))
struct AcceptingProbeTests {
    /// A Python process with a listening socket of its own; it prints the socket's fd, then runs `body`.
    /// SIGALRM ends it (and a child it forks) within 30 s whatever happens to the test.
    final class Server {
        let process = Process()
        let fd: Int32
        private let output = Pipe()

        init(_ body: String) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", """
                import os, select, signal, socket, sys, time
                signal.alarm(30)
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                s.listen(16)
                print(s.fileno(), flush=True)
                \(body)
                """]
            process.standardOutput = output
            try process.run()
            let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            fd = Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }

        var pid: Int32 { process.processIdentifier }
        /// How the evidence names the socket's fd when it is not the inherited fd 3.
        var alias: String { fd == 3 ? "" : " as fd \(fd)" }

        /// The listener as the supervisor would know it: from fstat, here read through /proc.
        func probe() throws -> AcceptingProbe {
            var info = stat()
            #expect(stat("/proc/\(pid)/fd/\(fd)", &info) == 0)
            return AcceptingProbe(targets: [.init(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), workerFD: 3, address: "127.0.0.1:test")])
        }

        /// Samples until the answer is not `.notYet` (servers need a moment to get there), at most `seconds`.
        func sample(within seconds: Double = 5) throws -> AcceptingSample {
            let probe = try probe()
            var last = AcceptingSample.notYet
            for _ in 0..<Int(seconds * 50) {
                last = probe.sample(pid: pid)
                if last != .notYet { return last }
                usleep(20_000)
            }
            return last
        }

        deinit {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            for child in children.split(separator: " ").compactMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) { kill(child, SIGKILL) }
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    static func evidence(_ sample: AcceptingSample) -> String {
        if case .accepting(let text) = sample { return text }
        return "not accepting: \(sample)"
    }

    @Test("an asyncio server: the socket is in the worker's epoll set")
    func epoll() throws {
        let server = try Server("""
            import asyncio
            async def main():
                await asyncio.start_server(lambda r, w: None, sock=s)
                await asyncio.sleep(60)
            asyncio.run(main())
            """)
        #expect(Self.evidence(try server.sample()) == "accepting on fd 3 (127.0.0.1:test): in an epoll set of the worker\(server.alias)")
    }

    @Test("a blocking accept loop: a thread waits in accept on the socket")
    func accept() throws {
        let server = try Server("s.accept()")
        #expect(Self.evidence(try server.sample()) == "accepting on fd 3 (127.0.0.1:test): the worker waits in accept\(server.alias)")
    }

    @Test("poll and select with the socket in the read set (http.server, gunicorn's sync worker)", arguments: [
        "p = select.poll()\np.register(s, select.POLLIN)\np.poll(60000)",
        "select.select([s], [], [], 60)",
    ])
    func pollOrSelect(body: String) throws {
        let server = try Server(body)
        #expect(Self.evidence(try server.sample()) == "accepting on fd 3 (127.0.0.1:test): the worker waits in poll/select\(server.alias)")
    }

    @Test("a parent that only holds the socket while its forked child accepts (gunicorn's arbiter): the child is named")
    func forkedChild() throws {
        let server = try Server("""
            child = os.fork()
            if child == 0:
                s.accept()
            else:
                time.sleep(60)
            """)
        let evidence = Self.evidence(try server.sample())
        #expect(evidence.hasPrefix("accepting on fd 3 (127.0.0.1:test): its child "), "\(evidence)")
        #expect(evidence.hasSuffix(" waits in accept\(server.alias)"), "\(evidence)")
    }

    @Test("a process that holds the listening socket but does not accept is not accepting")
    func holdsWithoutAccepting() throws {
        let server = try Server("time.sleep(60)")
        usleep(300_000)
        #expect(try server.probe().sample(pid: server.pid) == .notYet)
    }

    @Test("an asyncio server whose loop thread blocks right after start_server is not accepting: nobody waits on its epoll set")
    func epollSetNobodyWaitsOn() throws {
        let server = try Server("""
            import asyncio
            async def main():
                await asyncio.start_server(lambda r, w: None, sock=s)
                time.sleep(60)
            asyncio.run(main())
            """)
        usleep(800_000)
        #expect(try server.sample(within: 1) == .notYet)
    }

    @Test("a forked child that registers the socket in an epoll set and hangs, while the worker hangs too, is not accepting")
    func childRegistersAndHangs() throws {
        let server = try Server("""
            child = os.fork()
            if child == 0:
                e = select.epoll()
                e.register(s.fileno(), select.EPOLLIN)
                time.sleep(60)
            else:
                time.sleep(60)
            """)
        usleep(500_000)
        #expect(try server.sample(within: 1) == .notYet)
    }

    @Test("a forked child that waits on its epoll set holding the socket is accepting, and named")
    func childWaitsOnEpoll() throws {
        let server = try Server("""
            child = os.fork()
            if child == 0:
                e = select.epoll()
                e.register(s.fileno(), select.EPOLLIN)
                e.poll(60)
            else:
                time.sleep(60)
            """)
        let evidence = Self.evidence(try server.sample())
        #expect(evidence.hasPrefix("accepting on fd 3 (127.0.0.1:test): in an epoll set of its child "), "\(evidence)")
    }

    @Test("a pid that is gone cannot be told about")
    func gone() throws {
        let server = try Server("time.sleep(0.5)")
        let probe = try server.probe()
        server.process.waitUntilExit()
        #expect(probe.sample(pid: server.pid) == .unknown("process \(server.pid) is gone"))
    }
}
