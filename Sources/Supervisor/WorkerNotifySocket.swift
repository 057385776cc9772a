import CHyperglass
import Glibc
import SupervisorCore

/// The datagram socket workers send sd_notify messages to. Abstract, so there is no file to clean up;
/// SO_PASSCRED lets the kernel tell us which pid sent each message.
struct WorkerNotifySocket {
    let fd: Int32
    let address: String

    init() throws(SystemError) {
        var bytes: UInt64 = 0
        let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if urandom >= 0 { _ = read(urandom, &bytes, 8); close(urandom) }
        let name = "hyperglass/\(getpid())/\(String(bytes, radix: 36))/notify"
        fd = try Sys.check("create the workers' notify socket") { hg_notify_listen(name) }
        address = "@" + name
    }

    /// Every datagram waiting, as (sender pid, message).
    func receiveAll() -> [(pid: Int32, message: NotifyMessage)] {
        var received: [(Int32, NotifyMessage)] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        for _ in 0..<256 {
            var pid: Int32 = 0
            let n = hg_notify_recv(fd, &buffer, buffer.count, &pid)
            if n <= 0 { break }
            let text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            received.append((pid, NotifyMessage(parsing: text)))
        }
        return received
    }
}
