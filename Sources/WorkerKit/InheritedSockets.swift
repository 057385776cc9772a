import CHyperglass
import Glibc

/// A listening socket passed to us the way systemd's socket activation passes it.
public struct InheritedSocket: Sendable, Equatable {
    /// The descriptor, 3 or above.
    public let fd: Int32
    /// Its name from `LISTEN_FDNAMES`, or "unknown" as systemd defaults it.
    public let name: String

    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }
}

/// The `LISTEN_FDS` protocol, as `sd_listen_fds(1)` reads it: the supervisor keeps the
/// listening sockets and every worker gets the same ones from fd 3 on.
public enum InheritedSockets {
    /// The first inherited descriptor (`SD_LISTEN_FDS_START`).
    public static let firstFD: Int32 = 3

    /// Takes the inherited sockets: parses the variables, unsets them (they name our pid, so a child
    /// must not believe them), and makes each fd non-blocking and close-on-exec.
    public static func take() -> [InheritedSocket] {
        let sockets = parse(
            listenFDs: Environment.get("LISTEN_FDS"),
            listenPID: Environment.get("LISTEN_PID"),
            names: Environment.get("LISTEN_FDNAMES"),
            ownPID: getpid())
        for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] { Environment.unset(name) }
        for socket in sockets {
            _ = hg_set_nonblocking(socket.fd)
            _ = hg_set_cloexec(socket.fd)
        }
        return sockets
    }

    /// The pure reading of the three variables. A `LISTEN_PID` naming another process means the
    /// variables were meant for an ancestor and leaked to us: ignore them, as sd_listen_fds does.
    static func parse(listenFDs: String?, listenPID: String?, names: String?, ownPID: Int32) -> [InheritedSocket] {
        guard let listenFDs, let count = Int32(listenFDs), count > 0, count < 4096 else { return [] }
        if let listenPID {
            guard let pid = Int32(listenPID), pid == ownPID else { return [] }
        }
        let nameList = names.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        return (0..<count).map { index in
            let i = Int(index)
            let name = i < nameList.count && !nameList[i].isEmpty ? nameList[i] : "unknown"
            return InheritedSocket(fd: firstFD + index, name: name)
        }
    }
}
