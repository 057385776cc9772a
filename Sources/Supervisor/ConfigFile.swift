import CHyperglass
import Glibc
import SupervisorCore

/// Reads a configuration file whole or not at all, and never freezes the loop: longer than `limit` is
/// refused (it used to be cut at 1 MiB, silently: a different configuration), a FIFO or device is
/// refused (its open waited for a writer, freezing signals, reaping and the watchdog), and an open or
/// read that does not finish within `timeout` (a hung network mount) is refused (issue 25, items 9, 10).
enum ConfigFile {
    static let limit = 1 << 20
    static let timeout: Duration = .seconds(2)

    /// The text of `path`; `role` says in errors which file it is ("the default configuration file").
    static func read(_ path: String, role: String? = nil) throws(ConfigError) -> String {
        var data: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        let result = hg_read_config(path, limit, Int32(timeout.nanoseconds / 1_000_000), &data, &length)
        let what = role.map { " (\($0))" } ?? ""
        switch result {
        case 0:
            defer { free(data) }
            guard let data else { return "" }
            return data.withMemoryRebound(to: UInt8.self, capacity: length) { String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self) }
        case Int32(HG_CONFIG_NOT_REGULAR):
            throw ConfigError(location: path, message: "cannot read\(what): not a regular file (a FIFO, a device or a directory); point the configuration at a file")
        case Int32(HG_CONFIG_TOO_LARGE):
            throw ConfigError(location: path, message: "cannot read\(what): larger than \(limit / 1024 / 1024) MiB, which no configuration is; is it the right file?")
        case Int32(HG_CONFIG_TIMED_OUT):
            throw ConfigError(location: path, message: "cannot read\(what): it did not open and read within \(timeout.spoken) (a hung network mount?); nothing changed")
        default:
            throw ConfigError(location: path, message: "cannot read\(what): \(String(cString: strerror(errno)))")
        }
    }
}
