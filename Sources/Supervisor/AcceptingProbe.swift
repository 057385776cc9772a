import CHyperglass
import Glibc
import SupervisorCore

/// Whether a worker really accepts on the listening sockets it inherited, seen from /proc alone:
/// the socket registered for input in an epoll set of the worker's process tree, or a thread blocked
/// in accept, poll or select on it (docs/readiness.md: which servers show which, measured).
/// The tree matters: gunicorn's arbiter never accepts, its forked workers do.
struct AcceptingProbe {
    /// One listening socket as the kernel names it, and where workers find it.
    struct Target {
        let device: UInt64
        let inode: UInt64
        /// The fd the worker received it at (3, 4, ...), for the evidence.
        let workerFD: Int32
        let address: String
    }

    let targets: [Target]
    /// Bounds the walk of a worker's process tree (gunicorn -w 64 is still well inside).
    static let maxProcesses = 256

    init(targets: [Target]) { self.targets = targets }

    /// The listening sockets by inode; a socket fstat cannot see is left out (and logged by the caller).
    init(listeners: [(fd: Int32, address: String)]) {
        var targets: [Target] = []
        for (index, listener) in listeners.enumerated() {
            var info = stat()
            guard fstat(listener.fd, &info) == 0 else { continue }
            targets.append(Target(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), workerFD: 3 + Int32(index),
                                  address: listener.address))
        }
        self.init(targets: targets)
    }

    /// Looks at `pid` and its descendants. A server that accepts on one inherited socket accepts on all it
    /// uses (uvicorn `--fd 3` uses only the first), so one is enough; the evidence names which.
    func sample(pid: Int32) -> AcceptingSample {
        guard !targets.isEmpty else { return .unknown("no listening socket to look for") }
        var found = targets.map { hg_accepting(device: $0.device, inode: $0.inode, how: 0, pid: 0, fd: -1, tid: 0) }
        var queue: [Int32] = [pid]
        var visited = 0
        var children = [Int32](repeating: 0, count: 128)
        while visited < queue.count && visited < AcceptingProbe.maxProcesses {
            let current = queue[visited]
            visited += 1
            let filled = hg_accepting_scan(current, &found, Int32(found.count))
            if filled < 0 {
                if current == pid { return .unknown(errno == EACCES ? "/proc/\(pid) is not readable: \(String(cString: strerror(errno)))" : "process \(pid) is gone") }
                continue
            }
            if found.allSatisfy({ $0.how != 0 }) { break }
            let n = hg_process_children(current, &children, Int32(children.count))
            if n > 0 { queue += children.prefix(Int(n)) }
        }
        let seen = zip(targets, found).filter { $0.1.how != 0 }
        guard !seen.isEmpty else { return .notYet }
        return .accepting(evidence(seen.map { ($0.0, $0.1) }, root: pid))
    }

    /// "accepting on fd 3 (127.0.0.1:8001): registered in an epoll set of pid 1240", in an operator's words.
    private func evidence(_ seen: [(Target, hg_accepting)], root: Int32) -> String {
        let (target, how) = seen[0]
        var text = "accepting on fd \(target.workerFD) (\(target.address))"
        if seen.count < targets.count { text += ", \(seen.count) of \(targets.count) listeners" }
        let process = how.pid == root ? "the worker" : "its child \(how.pid)"
        let alias = how.fd >= 0 && how.fd != target.workerFD ? " as fd \(how.fd)" : ""
        switch Int(how.how) {
        case HG_ACCEPTING_EPOLL: text += ": in an epoll set of \(process)\(alias)"
        case HG_ACCEPTING_ACCEPT: text += ": \(process) waits in accept\(alias)"
        default: text += ": \(process) waits in poll/select\(alias)"
        }
        return text
    }
}
