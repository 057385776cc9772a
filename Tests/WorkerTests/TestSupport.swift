import Glibc
import Testing

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

/// A free loopback port: bind to port 0 and give it back (the worker binds it a moment later).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(fd) }
    var address = loopback(port: 0)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure(description: "bind: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return address
}

/// A child process started with posix_spawn; tests kill it by pid when done.
struct Child {
    let pid: pid_t

    /// The built worker, next to the test bundle in the build directory.
    static var workerPath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        var directory = exe
        while let last = directory.last, last != "/" { directory.removeLast() }
        return directory + "hyperglass-worker"
    }

    /// Starts `path`; `environment` entries ("NAME=value") replace inherited ones of the same name.
    static func spawn(_ path: String, _ arguments: [String], environment: [String] = []) throws -> Child {
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var inherited: [String] = []
        var entry = environ
        let overridden = Set(environment.map { $0.prefix { $0 != "=" } })
        while let pointer = entry.pointee {
            let item = String(cString: pointer)
            if !overridden.contains(item.prefix { $0 != "=" }) { inherited.append(item) }
            entry += 1
        }
        let envp: [UnsafeMutablePointer<CChar>?] = (environment + inherited).map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, nil, nil, argv, envp)
        guard rc == 0 else { throw TestFailure(description: "posix_spawn \(path): error \(rc)") }
        return Child(pid: pid)
    }

    /// Waits up to `seconds` for the exit status; nil if it died by a signal. Throws on timeout.
    func wait(seconds: Double) throws -> Int32? {
        let deadline = now() + seconds
        var status: Int32 = 0
        while now() < deadline {
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == pid { return status & 0x7F == 0 ? (status >> 8) & 0xFF : nil }
            if rc < 0 { throw TestFailure(description: "waitpid: errno \(errno)") }
            usleep(20_000)
        }
        throw TestFailure(description: "pid \(pid) still running after \(seconds) s")
    }

    /// SIGKILL and reap, if still running.
    func kill() {
        if Glibc.kill(pid, 0) == 0 {
            _ = Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A blocking loopback TCP client with a receive timeout, so no test waits forever.
final class Client {
    let fd: Int32
    private var buffered: [UInt8] = []

    private init(fd: Int32) { self.fd = fd }

    /// Connects, retrying while the worker starts up; every receive gives up after `receiveTimeout`.
    static func connect(port: Int, within seconds: Double, receiveTimeout: Int = 5) throws -> Client {
        let deadline = now() + seconds
        while true {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = loopback(port: port)
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc == 0 {
                var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                return Client(fd: fd)
            }
            Glibc.close(fd)
            guard now() < deadline else { throw TestFailure(description: "cannot connect to port \(port)") }
            usleep(20_000)
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n == bytes.count else { throw TestFailure(description: "send: errno \(errno)") }
    }

    /// Reads until the text seen so far contains `marker`; returns all of it.
    func receive(until marker: String) throws -> String {
        while true {
            let text = String(decoding: buffered, as: UTF8.self)
            if let range = text.firstRange(of: marker) {
                let end = text[..<range.upperBound].utf8.count
                buffered.removeFirst(end)
                return String(text[..<range.upperBound])
            }
            guard try fill() else { throw TestFailure(description: "connection closed before '\(marker)': \(text)") }
        }
    }

    /// Exactly `count` bytes, or fewer if the peer closed first.
    func receiveBytes(count: Int) throws -> [UInt8] {
        while buffered.count < count, try fill() {}
        let taken = Array(buffered.prefix(count))
        buffered.removeFirst(taken.count)
        return taken
    }

    /// Reads once; false at end of stream. A timeout throws.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw TestFailure(description: "recv: errno \(errno) (timed out?)") }
        buffered += chunk[0..<n]
        return n > 0
    }

    private var closed = false

    /// Closes once: a second close could hit an fd number another test (running in parallel) now owns.
    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}

/// A Unix datagram socket in the abstract namespace that stands for a supervisor's NOTIFY_SOCKET
/// and reads only when told to.
final class DatagramSink {
    let fd: Int32
    /// The name to put in NOTIFY_SOCKET.
    let address: String

    init() throws {
        address = "@hyperglass-test-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure(description: "socket: errno \(errno)") }
        var sockaddress = DatagramSink.socketAddress(address)
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.utf8.count)
        let rc = withUnsafePointer(to: &sockaddress) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        // No close here: a class whose init throws once every property is set still runs deinit.
        guard rc == 0 else { throw TestFailure(description: "bind \(address): errno \(errno)") }
    }

    /// Sends to ourselves from another socket until the receive queue is full (EAGAIN), as the
    /// queue of a stopped supervisor fills. Returns how many datagrams fit.
    func fill() throws -> Int {
        let sender = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer { Glibc.close(sender) }
        var sockaddress = DatagramSink.socketAddress(address)
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.utf8.count)
        for count in 0..<100_000 {
            let n = withUnsafePointer(to: &sockaddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(sender, "filler", 6, 0, $0, length) }
            }
            if n < 0 {
                guard errno == EAGAIN else { throw TestFailure(description: "filling the queue: errno \(errno)") }
                return count
            }
        }
        throw TestFailure(description: "the queue never filled")
    }

    /// Every datagram queued now, without waiting.
    func drain() -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<100_000 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n >= 0 else { break }
            messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return messages
    }

    private static func socketAddress(_ address: String) -> sockaddr_un {
        var result = sockaddr_un()
        result.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &result.sun_path) { path in
            for (index, byte) in address.utf8.enumerated() { path[index] = byte }
            path[0] = 0
        }
        return result
    }

    deinit { Glibc.close(fd) }
}

/// The resident set size of a process in KiB, from /proc.
func residentKiB(_ pid: pid_t) -> Int {
    guard let file = fopen("/proc/\(pid)/status", "r") else { return -1 }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 512)
    while fgets(&buffer, Int32(buffer.count), file) != nil {
        let line = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if line.hasPrefix("VmRSS:") { return Int(line.split(separator: " ")[1]) ?? -1 }
    }
    return -1
}
