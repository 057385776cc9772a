import Glibc
import SupervisorCore

/// Tells an OOM kill from any other SIGKILL. With a memory controller the worker's cgroup counts it
/// (`memory.events`: `oom_kill N`); elsewhere (a hybrid machine, whose v1 memory cgroup may hold the
/// whole service) the kernel's log names the pid, as the kubelet's OOM watcher reads it: "Memory
/// cgroup out of memory: Killed process 1234 (python3) ...". The log is read only when a worker dies
/// of SIGKILL, never watched: no wake-ups for other kernel messages.
final class OomWatch {
    /// /dev/kmsg opened at start and read from its end on (-1: not readable here, e.g. ProtectKernelLogs=).
    private let kmsg: Int32
    /// Pids the kernel's log named as OOM-killed and not yet asked about (bounded).
    private var named: [Int32] = []

    init() {
        kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if kmsg >= 0 { lseek(kmsg, 0, SEEK_END) }
    }

    deinit { if kmsg >= 0 { close(kmsg) } }

    /// Whether the worker `pid`, killed by SIGKILL, was the OOM killer's: from its cgroup if it has one
    /// with a memory controller, else from the kernel's log.
    func wasOomKilled(_ pid: Int32, cgroup: String?) -> Bool {
        if let cgroup, let text = try? Sys.readFile(cgroup + "/memory.events", limit: 1024) {
            return OomWatch.oomKills(memoryEvents: text) > 0
        }
        readLog()
        guard let index = named.firstIndex(of: pid) else { return false }
        named.remove(at: index)
        return true
    }

    /// `oom_kill N` from a v2 memory.events.
    static func oomKills(memoryEvents text: String) -> Int {
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") { return Int(line.dropFirst(9)) ?? 0 }
        return 0
    }

    /// The pid in a kmsg record "…;…Killed process PID (comm)…", if it is one.
    static func killedPid(record: Substring) -> Int32? {
        guard let range = record.firstRange(of: "Killed process ") else { return nil }
        return Int32(record[range.upperBound...].prefix { $0.isNumber })
    }

    /// Reads every record written since the last read (bounded), keeping OOM kills.
    private func readLog() {
        guard kmsg >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 8192)
        for _ in 0..<10_000 {
            let n = buffer.withUnsafeMutableBytes { read(kmsg, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EPIPE || errno == EINTR { continue }  // EPIPE: records overwritten before we read them
                return  // EAGAIN: nothing more
            }
            if n == 0 { return }
            let record = String(decoding: buffer[0..<n], as: UTF8.self)
            if let pid = OomWatch.killedPid(record: Substring(record)) {
                named.append(pid)
                if named.count > 64 { named.removeFirst() }
            }
        }
    }
}
