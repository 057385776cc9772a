import ControlProtocol
import Glibc
import SupervisorCore

/// `hyperglassctl status` data: the pool as the core sees it, plus what /proc says of each process.
enum StatusReport {
    static func json(pool: Pool, startedAt: Instant, now: Instant) -> JSON {
        let supervisor: JSON = .object([
            ("pid", .number(Double(getpid()))),
            ("version", .string(version)),
            ("uptime_seconds", .number(seconds(now - startedAt))),
            ("state", .string(state(of: pool))),
            ("status", .string(pool.statusText(at: now))),
            ("desired", .number(Double(pool.desired))),
            ("ready", .number(Double(pool.readyCount))),
            ("rss_bytes", rss(getpid())),
            ("release", .number(Double(pool.release))),
            ("readiness", .string(pool.policy.readiness.rawValue)),
            ("min_ready_seconds", .number(seconds(pool.policy.minReady))),
            ("roll", pool.rollProgress.map { roll in
                .object([("kind", .string(roll.kind.rawValue)), ("done", .number(Double(roll.done))), ("total", .number(Double(roll.total))),
                         ("to_go", .number(Double(roll.total - roll.done))), ("starting", .number(Double(roll.starting))),
                         ("settling", .number(Double(roll.settling))), ("failed", .number(Double(roll.failed))),
                         ("proving", .bool(roll.proving))])
            } ?? .null),
            ("upgrade", pool.upgradePreparation.map { .object([("checking", .string($0.shown)), ("seconds", .number(seconds(now - $0.since)))]) } ?? .null),
            // Connections waiting `backlog_wait` unaccepted: `hyperglassctl health` is unhealthy while this is set.
            ("backlog_stall", pool.backlogStall.map { .string($0.description) } ?? .null),
            ("listeners", .array(pool.backlog.listeners.map { listener in
                .object([("address", .string(listener.address)), ("waiting", .number(Double(listener.waiting))),
                         ("oldest_wait_seconds", pool.backlog.wait(of: listener).map { .number(seconds($0)) } ?? .null)])
            })),
            ("last_roll", pool.lastRoll.map { outcome in
                .object([("kind", .string(outcome.kind.rawValue)), ("ok", .bool(outcome.succeeded)), ("summary", .string(outcome.summary))])
            } ?? .null),
        ])
        var workers: [JSON] = []
        for slot in pool.slots {
            let worker = slot.pid.flatMap { pool.workers[$0] }
            workers.append(entry(slot: slot.id, worker: worker, slotInfo: slot, threshold: pool.policy.health.probeFailures, now: now))
        }
        // Workers still draining after a scale-down have no slot any more; they are shown too.
        let current = Set(pool.slots.compactMap(\.pid))
        for worker in pool.workers.values.sorted(by: { $0.pid < $1.pid }) where !current.contains(worker.pid) {
            var item = entry(slot: worker.slot, worker: worker, slotInfo: nil, threshold: pool.policy.health.probeFailures, now: now)
            // A roll's successor that is ready but still inside min_ready: it takes over when that ends.
            if let until = pool.settlingUntil(worker.pid), case .object(var members) = item {
                members = members.map { $0.0 == "state" ? ("state", .string("settling")) : $0 }
                members.append(("takes_over_in_seconds", .number(seconds(until > now ? until - now : .zero))))
                item = .object(members)
            }
            workers.append(item)
        }
        return ControlReply.success([("supervisor", supervisor), ("workers", .array(workers))])
    }

    static func state(of pool: Pool) -> String {
        switch pool.phase {
        case .stopping, .exited: return "draining"
        // Still serving, but reporting not-ready (`hyperglassctl health` fails on it).
        case .lameDuck: return "lame-duck"
        case .starting: return pool.crashLoopingSlots.isEmpty ? "starting" : "crash-looping"
        case .running:
            if !pool.crashLoopingSlots.isEmpty { return "crash-looping" }
            if let roll = pool.roll { return roll.kind == .restart ? "restarting" : "reloading" }
            return pool.scalingFrom != nil ? "scaling" : "running"
        }
    }

    private static func entry(slot id: Int, worker: WorkerProcess?, slotInfo: Slot?, threshold: Int, now: Instant) -> JSON {
        var members: [(String, JSON)] = [("id", .number(Double(id)))]
        if let worker {
            members += [
                ("pid", .number(Double(worker.pid))),
                ("state", .string(worker.state)),
                ("generation", .number(Double(worker.generation))),
                ("release", .number(Double(worker.release))),
                ("uptime_seconds", .number(seconds(now - worker.startedAt))),
                ("rss_bytes", rss(worker.pid)),
            ]
            if let status = worker.status { members.append(("worker_status", .string(status))) }
            // Why it counts as ready ("accepting on fd 3 (127.0.0.1:8001): in an epoll set of the worker"), and when.
            if let readyAt = worker.readyAt {
                members.append(("ready_after_seconds", .number(seconds(readyAt - worker.startedAt))))
                members.append(("ready_evidence", worker.readiness.evidence.map { .string($0) } ?? .null))
            }
            members.append(("health", .string(worker.health.summary(threshold: threshold))))
            if let probe = worker.health.lastProbe {
                members.append(("last_probe", .object([("ok", .bool(probe.ok)), ("latency_ms", .number(seconds(probe.latency) * 1000)),
                                                       ("detail", .string(probe.detail))])))
            }
            if let ping = worker.health.lastWatchdogAt { members.append(("watchdog_age_seconds", .number(seconds(now - ping)))) }
        } else {
            members += [("pid", .null), ("state", .string(slotInfo?.restartAt != nil ? "backoff" : "starting"))]
        }
        if let slotInfo {
            members.append(("restarts", .number(Double(slotInfo.restarts))))
            members.append(("last_exit", slotInfo.lastExit.map { .string($0.description) } ?? .null))
            // Why the slot's last worker was replaced: a crash, a missed watchdog, failed probes, memory.
            members.append(("last_failure", slotInfo.lastFailure.map { .string($0) } ?? .null))
            if let due = slotInfo.restartAt, due > now { members.append(("restart_in_seconds", .number(seconds(due - now)))) }
        }
        return .object(members)
    }

    private static func seconds(_ d: Duration) -> Double { (d.seconds * 10).rounded() / 10 }

    /// VmRSS from /proc/PID/status, in bytes.
    static func rss(_ pid: Int32) -> JSON {
        Sys.residentBytes(pid).map { .number(Double($0)) } ?? .null
    }
}
