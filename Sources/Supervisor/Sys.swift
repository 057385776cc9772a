@_exported import SystemCalls
import CHyperglass
import Glibc
import SupervisorCore

/// The supervisor's own helpers on the shared door to the kernel (the SystemCalls target), which
/// every file of the supervisor sees through this one import.
extension Sys {
    /// VmRSS of a process in bytes, from /proc; nil when it is gone.
    static func residentBytes(_ pid: Int32) -> UInt64? {
        guard let text = try? readFile("/proc/\(pid)/status", limit: 8192),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = line.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) }) else { return nil }
        return kib * 1024
    }

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
