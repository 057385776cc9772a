import CHyperglass
import ControlProtocol
import SupervisorCore

/// The shell of autoscaling (`workers = auto:MIN-MAX`): the measurements and the listeners' watch. What to
/// do with them is the core's (`Pool+Autoscaling.swift`, `Autoscaler`). Idle at the floor, the loop takes
/// no samples: each listener is watched for one incoming connection (EPOLLONESHOT).
extension EventLoop {
    /// epoll data for a listener watched for load: this bit plus its fd.
    static let listenerTag: UInt64 = 1 << 35

    /// Watches every listener for one connection (`add` the first time, re-armed after); forgets the CPU baselines.
    func watchListenersForLoad() {
        loadSampler.reset()
        let add = !listenersWatched
        listenersWatched = true
        for listener in listeners {
            _ = hg_epoll_watch_once(epoll, listener.fd, EventLoop.listenerTag | UInt64(UInt32(bitPattern: listener.fd)), add ? 1 : 0)
        }
    }

    /// The autoscaling part of `status --json`, null when autoscaling is off.
    var autoscalingJSON: JSON {
        guard let scaler = pool.autoscaler else { return .null }
        let ceiling = pool.memoryCeiling
        var members: [(String, JSON)] = [
            ("min", .number(Double(scaler.policy.floor))),
            ("max", .number(Double(scaler.ceiling(memoryCeiling: ceiling)))),
            ("configured_max", .number(Double(scaler.policy.ceiling))),
            ("current", .number(Double(pool.desired))),
            ("pinned", scaler.pinned.map { .number(Double($0)) } ?? .null),
            ("sampling", .bool(scaler.mode == .sampling && scaler.pinned == nil)),
            ("summary", .string(pool.scalingNote ?? "")),
        ]
        if let change = scaler.lastChange {
            members.append(("last_change", .object([("from", .number(Double(change.from))), ("to", .number(Double(change.to))),
                                                    ("seconds_ago", .number(((Sys.now - change.at).seconds * 10).rounded() / 10)),
                                                    ("reason", .string(change.reason))])))
        }
        return .object(members)
    }
}
