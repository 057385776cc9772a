@_exported import SystemCalls
import CHyperglass
import Glibc
import SupervisorCore

/// The supervisor's own helpers on the shared door to the kernel (the SystemCalls target), which
/// every file of the supervisor sees through this one import.
extension Sys {
    /// Resident bytes of a process (VmRSS), from the second field of /proc/PID/statm (pages); nil when it is
    /// gone. Not /proc/PID/status: the kernel formats its 50 lines for the one we want, and `status` at
    /// 1,000 workers spent most of its time there and in splitting the text.
    static func residentBytes(_ pid: Int32) -> UInt64? {
        let fd = open("/proc/\(pid)/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Sys.close(fd) }
        return withUnsafeTemporaryAllocation(byteCount: 128, alignment: 1) { buffer -> UInt64? in
            guard case .bytes(let count) = read(fd, buffer) else { return nil }
            var field = 0
            var value: UInt64 = 0
            for byte in buffer.prefix(count) {
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                    if field == 1 { return value &* Sys.pageSize }
                    field += 1
                    value = 0
                } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                    value = value &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
                }
            }
            return nil
        }
    }

    static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    static var now: Instant { Instant(nanoseconds: hg_monotonic_ns()) }

    /// Sends a signal to a worker's process group; a group already gone is not an error.
    static func signalGroup(_ pid: Int32, _ signal: Int32) {
        if kill(-pid, signal) < 0 && errno == ESRCH { _ = kill(pid, signal) }
    }

    static func onlineCPUs() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    static func environment() -> [String] {
        var result: [String] = []
        guard var cursor = hg_environ() else { return result }
        while let entry = cursor.pointee {
            result.append(String(cString: entry))
            cursor += 1
        }
        return result
    }

    static func environmentDictionary() -> [String: String] {
        var result: [String: String] = [:]
        for entry in environment() {
            guard let eq = entry.firstIndex(of: "=") else { continue }
            result[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
        return result
    }

    static func readFile(_ path: String, limit: Int = 1 << 20) throws(SystemError) -> String {
        let fd = try check("open \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            switch chunk.withUnsafeMutableBytes({ read(fd, $0) }) {
            case .bytes(let n): bytes += chunk[0..<n]
            case .endOfFile, .wouldBlock: return String(decoding: bytes, as: UTF8.self)
            case .failed(let error): throw SystemError(operation: "read \(path)", errno: error.rawValue)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The directory holding this executable, to find the bundled hyperglass-worker beside it.
    static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}
