import CHyperglass
import Glibc
import SystemCalls
import Testing

/// The calls of the shared door (Sources/SystemCalls) that only the worker uses, on real fds.
@Suite("SystemCalls: the worker's epoll and socket calls", .timeLimit(.minutes(1)))
struct SystemCallsTests {
    @Test("an fd removed from an epoll set twice is simply no longer watched (the worker pauses accepts, then drains)")
    func removeTwice() throws {
        let epfd = try Sys.check("epoll_create1", hg_epoll_create)
        defer { Sys.close(epfd) }
        let (ours, theirs) = try connectedPair()
        defer { Sys.close(ours); Sys.close(theirs) }
        try Epoll.add(epfd, ours, HG_EPOLLIN, 1)
        Epoll.remove(epfd, ours)
        Epoll.remove(epfd, ours)
        #expect(send(theirs, "x") == .bytes(1))
        let events = UnsafeMutableBufferPointer<hg_event>.allocate(capacity: 4)
        defer { events.deallocate() }
        #expect(Epoll.wait(epfd, events, timeoutMilliseconds: 0) == 0)
    }

    @Test("epoll_wait fills the caller's buffer with each ready fd's events and data")
    func waitIntoBuffer() throws {
        let epfd = try Sys.check("epoll_create1", hg_epoll_create)
        defer { Sys.close(epfd) }
        let (ours, theirs) = try connectedPair()
        defer { Sys.close(ours); Sys.close(theirs) }
        let data: UInt64 = 0xABCD << 32 | UInt64(UInt32(bitPattern: ours))
        try Epoll.add(epfd, ours, HG_EPOLLIN, data)
        let events = UnsafeMutableBufferPointer<hg_event>.allocate(capacity: 4)
        defer { events.deallocate() }
        #expect(Epoll.wait(epfd, events, timeoutMilliseconds: 0) == 0)
        #expect(send(theirs, "x") == .bytes(1))
        #expect(Epoll.wait(epfd, events, timeoutMilliseconds: 1000) == 1)
        #expect(events[0].data == data)
        #expect(events[0].events & HG_EPOLLIN != 0)
    }

    @Test("shutdownWrite sends our FIN and leaves our read side open (the worker's lingering close)")
    func halfClose() throws {
        let (ours, theirs) = try connectedPair()
        defer { Sys.close(ours); Sys.close(theirs) }
        Sys.shutdownWrite(ours)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(buffer.withUnsafeMutableBytes { Sys.read(theirs, $0) } == .endOfFile)
        #expect(send(theirs, "late") == .bytes(4))
        #expect(buffer.withUnsafeMutableBytes { Sys.read(ours, $0) } == .bytes(4))
        let again = try connectedPair()
        Sys.close(again.1)
        Sys.shutdownWrite(again.0)  // the peer is gone already: nothing to tell, and no crash
        Sys.close(again.0)
    }

    /// Non-blocking, so a missing FIN or byte fails the test at once instead of hanging it.
    private func connectedPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        try Sys.check("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) }
        return (fds[0], fds[1])
    }

    private func send(_ fd: Int32, _ text: String) -> Sys.IO {
        Array(text.utf8).withUnsafeBytes { Sys.send(fd, $0) }
    }
}
