import Glibc
import Testing
@testable import WorkerKit

@Suite("WorkerKit: reading the supervisor's environment", .timeLimit(.minutes(1)))
struct WorkerKitTests {
    @Test("LISTEN_FDS gives fds from 3 with their names")
    func listenFDs() {
        let sockets = InheritedSockets.parse(listenFDs: "3", listenPID: "100", names: "http:admin", ownPID: 100)
        #expect(sockets == [.init(fd: 3, name: "http"), .init(fd: 4, name: "admin"), .init(fd: 5, name: "unknown")])
    }

    @Test("LISTEN_FDS meant for another pid, or malformed, is ignored")
    func foreign() {
        #expect(InheritedSockets.parse(listenFDs: "1", listenPID: "99", names: nil, ownPID: 100).isEmpty)
        #expect(InheritedSockets.parse(listenFDs: "x", listenPID: "100", names: nil, ownPID: 100).isEmpty)
        #expect(InheritedSockets.parse(listenFDs: "0", listenPID: "100", names: nil, ownPID: 100).isEmpty)
        #expect(InheritedSockets.parse(listenFDs: nil, listenPID: "100", names: nil, ownPID: 100).isEmpty)
        #expect(InheritedSockets.parse(listenFDs: "1", listenPID: nil, names: nil, ownPID: 100).count == 1)
    }

    @Test("the watchdog is sent at half of WATCHDOG_USEC, only when it is ours")
    func watchdog() {
        #expect(Watchdog.interval(usec: "2000000", pid: nil, ownPID: 5) == 1_000_000_000)
        #expect(Watchdog.interval(usec: "2000000", pid: "5", ownPID: 5) == 1_000_000_000)
        #expect(Watchdog.interval(usec: "2000000", pid: "6", ownPID: 5) == nil)
        #expect(Watchdog.interval(usec: "0", pid: nil, ownPID: 5) == nil)
        #expect(Watchdog.interval(usec: nil, pid: nil, ownPID: 5) == nil)
    }

    @Test("without NOTIFY_SOCKET every notification is a no-op")
    func notifierNoop() {
        let notifier = Notifier(address: nil)
        #expect(notifier.send("READY=1") == .disabled)
        #expect(Notifier(address: "").address == nil)
    }

    @Test("a full notify queue comes back as wouldBlock at once instead of blocking the caller")
    func notifierNeverBlocks() throws {
        let sink = try DatagramSink()
        let notifier = Notifier(address: sink.address)
        #expect(notifier.send("READY=1") == .sent)
        #expect(sink.drain() == ["READY=1"])
        _ = try sink.fill()
        let start = now()
        #expect(notifier.watchdog() == .wouldBlock)
        #expect(now() - start < 0.1)
        _ = sink.drain()
        #expect(notifier.send("STATUS=x") == .sent)
        #expect(Notifier(address: "@hyperglass-test-nobody-\(getpid())").send("READY=1") == .failed(ECONNREFUSED))
    }
}
