import Glibc
import SupervisorCore

/// Without a cgroup of our own the supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER): what a
/// worker leaves behind (a helper that called setsid() and so left the worker's process group)
/// reparents to us when its parent dies. Any child of ours that is not a worker is such a stray: it
/// is logged with its command line, sent SIGTERM, and SIGKILL after `graceful_timeout`; at exit every
/// stray is killed and reaped, so nothing we started holds the listening sockets after us.
struct Strays {
    /// Strays sent SIGTERM, and when they get SIGKILL. A stray is our child, so until we reap it its pid
    /// cannot be reused: signalling it is safe.
    private(set) var pending: [Int32: Instant] = [:]

    var nextDeadline: Instant? { pending.values.min() }

    /// Looks for children that are not workers, as `worker` was reaped (its orphans are ours by now);
    /// returns a log line for each new one. Those still in its process group already got its SIGKILL.
    mutating func sweep(workers: Set<Int32>, worker: Int32, grace: Duration, at now: Instant) -> [String] {
        var lines: [String] = []
        for pid in Strays.children() where !workers.contains(pid) && pending[pid] == nil {
            guard let (state, group) = Strays.stat(pid), state != "Z", group != worker else { continue }
            kill(pid, SIGTERM)
            pending[pid] = now + grace
            lines.append("stray process \(pid) (\(Strays.commandLine(pid))) was left by a worker; sent SIGTERM, SIGKILL in \(grace.spoken) if it is still there")
        }
        return lines
    }

    /// SIGKILLs the strays whose grace has passed.
    mutating func deadlinePassed(at now: Instant) {
        for (pid, at) in pending where at <= now {
            kill(pid, SIGKILL)
            pending[pid] = nil
        }
    }

    mutating func reaped(_ pid: Int32) { pending[pid] = nil }

    /// At exit, once no worker is left: SIGKILL every child and reap them (bounded: 2 s).
    mutating func killAll() -> [String] {
        var lines: [String] = []
        for pid in Strays.children() {
            if pending[pid] == nil { lines.append("stray process \(pid) (\(Strays.commandLine(pid))) was still there at exit; killed") }
            kill(pid, SIGKILL)
        }
        pending = [:]
        var status: Int32 = 0
        for _ in 0..<400 {
            let pid = waitpid(-1, &status, WNOHANG)
            if pid < 0 { break }  // ECHILD: none left
            if pid == 0 { usleep(5_000) }
        }
        return lines
    }

    /// Our children, from every thread's /proc/self/task/TID/children (a reparented orphan may go to any).
    static func children() -> [Int32] {
        guard let tasks = opendir("/proc/self/task") else { return [] }
        defer { closedir(tasks) }
        var result: Set<Int32> = []
        while let entry = readdir(tasks) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int32(name) != nil, let text = try? Sys.readFile("/proc/self/task/\(name)/children", limit: 1 << 20) else { continue }
            for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) { if let pid = Int32(field) { result.insert(pid) } }
        }
        return result.sorted()
    }

    /// State and process group of a process, from /proc/PID/stat.
    static func stat(_ pid: Int32) -> (state: Character, group: Int32)? {
        guard let text = try? Sys.readFile("/proc/\(pid)/stat", limit: 1024), let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": state, ppid, pgrp.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let group = Int32(fields[2]) else { return nil }
        return (state, group)
    }

    static func commandLine(_ pid: Int32) -> String {
        let raw = (try? Sys.readFile("/proc/\(pid)/cmdline", limit: 512)) ?? ""
        let words = raw.split(separator: "\0").joined(separator: " ")
        return words.isEmpty ? "?" : words
    }
}
