/// The `hyperglassctl status` table: what an operator reads at a glance. Pure (a reply in, text out),
/// so it lives beside the protocol where tests reach it.
public enum StatusTable {
    public static func render(_ reply: JSON) -> String {
        let s = reply["supervisor"] ?? .null
        var out = "supervisor  pid \(int(s["pid"]))  \(s["state"]?.string ?? "?")  up \(duration(s["uptime_seconds"]))"
        out += "  \(int(s["ready"]))/\(int(s["desired"])) workers ready  rss \(bytes(s["rss_bytes"]))\n"
        out += "status      \(s["status"]?.string ?? "")\n"
        if let readiness = s["readiness"]?.string {
            out += "readiness   \(readiness)" + (s["min_ready_seconds"]?.number.map { $0 > 0 ? ", min_ready \(duration(.number($0)))" : "" } ?? "") + "\n"
        }
        // Each listener's accept queue as the supervisor looked at it for this reply (`backlog_wait`).
        let listeners = (s["listeners"]?.array ?? []).map { listener in
            let waiting = int(listener["waiting"])
            // Tenths: a wait is short or it is the problem.
            let oldest = listener["oldest_wait_seconds"]?.number.map { (($0 * 10).rounded() as Double) }.map { "\(Int($0) / 10).\(Int($0) % 10)s" }
            return "\(listener["address"]?.string ?? "?") (\(waiting) waiting" + (oldest.map { ", the oldest \($0)" } ?? "") + ")"
        }
        if !listeners.isEmpty { out += "listeners   \(listeners.joined(separator: ", "))\n" }
        if let last = s["last_roll"], last != .null {
            out += "last roll   \(last["ok"]?.bool == true ? "ok" : "FAILED"): \(last["summary"]?.string ?? "")\n"
        }
        if let roll = s["roll"], roll != .null {
            out += "roll        \(roll["kind"]?.string ?? "?"): \(int(roll["done"])) done, \(int(roll["to_go"])) to go\n"
        }
        out += "\n"
        var rows = [["ID", "PID", "STATE", "GEN", "UPTIME", "RESTARTS", "LAST FAILURE", "RSS", "HEALTH", "READY"]]
        for worker in reply["workers"]?.array ?? [] {
            rows.append([
                String(int(worker["id"])),
                worker["pid"]?.int.map { String($0) } ?? "-",
                (worker["state"]?.string ?? "?") + (worker["restart_in_seconds"]?.number.map { " (in \(Int($0.rounded(.up)))s)" } ?? ""),
                worker["generation"]?.int.map { String($0) } ?? "-",
                worker["uptime_seconds"].map { duration($0) } ?? "-",
                worker["restarts"]?.int.map { String($0) } ?? "-",
                worker["last_failure"]?.string ?? worker["last_exit"]?.string ?? "-",
                bytes(worker["rss_bytes"]),
                health(worker),
                ready(worker),
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }
            out += cells.joined() + "\n"
        }
        return out
    }

    private static func int(_ value: JSON?) -> Int { value?.int ?? 0 }

    /// "after 1.8s: accepting on fd 3 (127.0.0.1:8001): in an epoll set of the worker", or "-" while starting.
    static func ready(_ worker: JSON) -> String {
        guard let after = worker["ready_after_seconds"]?.number else { return "-" }
        let seconds = after < 10 ? "\((after * 10).rounded() / 10)s" : duration(.number(after))
        return "after \(seconds)" + (worker["ready_evidence"]?.string.map { ": \($0)" } ?? "")
    }

    /// "ok", "failing 1/3", plus the last probe's latency and the watchdog ping's age when there are any.
    static func health(_ worker: JSON) -> String {
        var parts = [worker["health"]?.string ?? "-"]
        if let probe = worker["last_probe"], let ms = probe["latency_ms"]?.number {
            parts.append("probe \(probe["detail"]?.string ?? "?") \(Int(ms.rounded()))ms")
        }
        if let age = worker["watchdog_age_seconds"]?.number { parts.append("ping \(duration(.number(age))) ago") }
        return parts.joined(separator: ", ")
    }

    static func duration(_ value: JSON?) -> String {
        guard let seconds = value?.number else { return "-" }
        // `min_ready 500ms` is not `min_ready 0s`.
        if seconds > 0, seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        let total = Int(seconds)
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(twoDigits(total % 60))s" }
        if total < 86400 { return "\(total / 3600)h\(twoDigits(total % 3600 / 60))m" }
        return "\(total / 86400)d\(total % 86400 / 3600)h"
    }

    static func bytes(_ value: JSON?) -> String {
        guard let n = value?.number else { return "-" }
        let mib = n / 1_048_576
        return mib >= 10 ? "\(Int(mib.rounded())) MiB" : "\((mib * 10).rounded() / 10) MiB"
    }
}

/// Two digits, zero-padded, for "1m05s".
func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
