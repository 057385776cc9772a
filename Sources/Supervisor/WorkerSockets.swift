import CHyperglass
import Glibc
import SupervisorCore

/// Each worker's two private sockets, as files in a directory only we may enter (mode 0700, an
/// unpredictable name from mkdtemp, inside the checked runtime directory):
/// - its notify socket (NOTIFY_SOCKET), one per worker, so the socket a message arrives on names the
///   worker; a message is accepted only if its SCM_CREDENTIALS pid is that worker's too (a child of the
///   worker is not the worker, as before);
/// - its health socket, passed as fd `health`; the supervisor's probes connect to the file.
/// Abstract names, which these were, are listed in /proc/net/unix and open to every local user: anyone
/// could pre-bind the next health name (a crash loop) or send WATCHDOG=trigger with a worker's pid.
/// A worker running as root can still reach any socket here, and forge its credentials: root code can
/// also kill or ptrace the supervisor, so that is not a boundary this can add.
final class WorkerSockets {
    let directory: SocketDirectory
    private let parent: SocketDirectory

    /// A worker's sockets before and after its spawn.
    struct Prepared {
        let notifyFD: Int32
        let notifyName: String
        let healthFD: Int32?
        let healthName: String?
        var notifyAddress: String
    }

    private struct Owned {
        let pid: Int32
        let sockets: Prepared
    }

    /// Live workers' sockets by notify fd, and the notify fd by pid.
    private var byNotifyFD: [Int32: Owned] = [:]
    private var notifyFDByPid: [Int32: Int32] = [:]

    init(in runtime: SocketDirectory) throws(SystemError) {
        parent = runtime
        StaleWorkerDirectories.clean(in: runtime, log: Log(verbose: false))
        directory = try runtime.makePrivate(prefix: "workers")
        StaleWorkerDirectories.lock(directory)
    }

    /// After an upgrade: the private directory the old image made, reopened by path and checked again
    /// (0700, ours), and the count of workers started so new socket names do not collide with carried ones.
    init(adopting path: String, in runtime: SocketDirectory, started: Int) throws(SystemError) {
        parent = runtime
        directory = try SocketDirectory.open(path, createMode: nil, purpose: "the workers' sockets")
        self.started = started
    }

    /// What an upgrade hands over: each live worker's notify fd and socket names, and the start count.
    var carried: (started: Int, workers: [(pid: Int32, notifyFD: Int32, notifyName: String, healthName: String?)]) {
        (started, byNotifyFD.map { fd, owned in (owned.pid, fd, owned.sockets.notifyName, owned.sockets.healthName) }.sorted { $0.pid < $1.pid })
    }

    /// After an upgrade: a carried worker's notify socket is watched again under its pid.
    func adopt(pid: Int32, notifyFD: Int32, notifyName: String, healthName: String?) {
        adopt(Prepared(notifyFD: notifyFD, notifyName: notifyName, healthFD: nil, healthName: healthName,
                       notifyAddress: directory.path(of: notifyName)), pid: pid)
    }

    /// Counts every worker started: a slot removed and added again restarts its generations at 1 while
    /// the old worker may still be draining with its sockets, so names carry this too.
    private var started = 0

    /// Binds worker `slot`'s sockets for its generation `generation`.
    func prepare(slot: Int, generation: Int, health: Bool) throws(SystemError) -> Prepared {
        started += 1
        let suffix = "\(slot)-\(generation)-\(started)"
        let notifyName = "notify-\(suffix)"
        let notify = try directory.bind(notifyName, type: Int32(SOCK_DGRAM.rawValue), mode: 0o600, purpose: "worker \(slot)'s notify socket")
        var healthFD: Int32? = nil
        let healthName = health ? "health-\(suffix)" : nil
        if let healthName {
            do {
                healthFD = try directory.bind(healthName, type: Int32(SOCK_STREAM.rawValue), mode: 0o600, backlog: 16, purpose: "worker \(slot)'s health socket")
            } catch {
                Sys.close(notify)
                directory.remove(notifyName)
                throw error
            }
        }
        return Prepared(notifyFD: notify, notifyName: notifyName, healthFD: healthFD, healthName: healthName,
                        notifyAddress: directory.path(of: notifyName))
    }

    /// The worker runs: its health socket's fd (the worker holds it now) is closed here; the notify socket is watched.
    func adopt(_ sockets: Prepared, pid: Int32) {
        if let fd = sockets.healthFD { Sys.close(fd) }
        byNotifyFD[sockets.notifyFD] = Owned(pid: pid, sockets: sockets)
        notifyFDByPid[pid] = sockets.notifyFD
    }

    /// The spawn failed: nothing of it remains.
    func discard(_ sockets: Prepared) {
        Sys.close(sockets.notifyFD)
        directory.remove(sockets.notifyName)
        if let fd = sockets.healthFD { Sys.close(fd) }
        if let name = sockets.healthName { directory.remove(name) }
    }

    /// The worker was reaped: its sockets go (closing the notify fd takes it out of epoll).
    func release(pid: Int32) {
        guard let fd = notifyFDByPid.removeValue(forKey: pid), let owned = byNotifyFD.removeValue(forKey: fd) else { return }
        discard(Prepared(notifyFD: fd, notifyName: owned.sockets.notifyName, healthFD: nil, healthName: owned.sockets.healthName,
                         notifyAddress: owned.sockets.notifyAddress))
    }

    /// Where probes connect to reach worker `pid`, through our open directory; nil without a health socket.
    func healthAddress(of pid: Int32) -> String? {
        guard let fd = notifyFDByPid[pid], let name = byNotifyFD[fd]?.sockets.healthName else { return nil }
        return directory.anchored(name)
    }

    /// Every live worker's notify socket, for reading what waits on all of them at once.
    var notifyFDs: [Int32] { Array(byNotifyFD.keys) }

    /// Up to 64 waiting datagrams on one worker's notify socket, from that worker; others are dropped.
    func receive(_ fd: Int32) -> (accepted: [(pid: Int32, message: NotifyMessage)], rejected: [Int32]) {
        guard let owner = byNotifyFD[fd]?.pid else { return ([], []) }
        var accepted: [(Int32, NotifyMessage)] = []
        var rejected: [Int32] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        for _ in 0..<64 {
            var sender: Int32 = 0
            let n = hg_notify_recv(fd, &buffer, buffer.count, &sender)
            if n <= 0 { break }
            guard sender == owner else { rejected.append(sender); continue }
            let text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            accepted.append((owner, NotifyMessage(parsing: text)))
        }
        return (accepted, rejected)
    }

    /// At exit: the sockets and the private directory.
    func removeAll() {
        for fd in Array(byNotifyFD.keys) { if let pid = byNotifyFD[fd]?.pid { release(pid: pid) } }
        directory.removeAll(from: parent)
    }
}
