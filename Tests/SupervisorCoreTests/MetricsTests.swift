import Testing
@testable import SupervisorCore

/// The Prometheus exposition and the counters behind it: pure, from a driven pool.
@Suite("Metrics: counters and the Prometheus text", .timeLimit(.minutes(1)))
struct MetricsTests {
    static let notify = PoolPolicy.with { $0.readiness = .notify }

    static func running(_ desired: Int, policy: PoolPolicy = notify) -> PoolDriver {
        var driver = PoolDriver(desired: desired, policy: policy)
        driver.start()
        driver.readyAll()
        return driver
    }

    static func render(_ driver: PoolDriver) -> String {
        PrometheusText.render(MetricsSnapshot(pool: driver.pool, version: "1.2.3", at: driver.now))
    }

    /// The value of one sample line, found by its exact name and labels.
    static func value(_ text: String, _ series: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.map { String($0.dropFirst(series.count + 1)) }
    }

    @Test("every reason and roll outcome is there at zero from the first scrape, so rates and alerts start at once")
    func zeroSeries() {
        let text = Self.render(Self.running(2))
        for reason in ["crash", "failed-start", "ready-timeout", "watchdog", "probe", "memory"] {
            #expect(Self.value(text, "hyperglass_worker_failures_total{reason=\"\(reason)\"}") == "0")
            #expect(Self.value(text, "hyperglass_worker_restarts_total{reason=\"\(reason)\"}") == "0")
        }
        #expect(Self.value(text, "hyperglass_rolls_total{kind=\"reload\",outcome=\"failure\"}") == "0")
        #expect(Self.value(text, "hyperglass_workers{state=\"ready\"}") == "2")
        #expect(Self.value(text, "hyperglass_workers{state=\"backoff\"}") == "0")
        #expect(Self.value(text, "hyperglass_workers_desired") == "2")
        #expect(Self.value(text, "hyperglass_build_info{version=\"1.2.3\"}") == "1")
        #expect(Self.value(text, "hyperglass_worker_spawns_total") == "2")
    }

    @Test("every sample belongs to a family declared once with HELP and TYPE, and counters end in _total")
    func wellFormed() {
        let text = Self.render(Self.running(3))
        var declared: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            if line.hasPrefix("# TYPE ") {
                #expect(declared[String(words[2])] == nil, "declared twice: \(words[2])")
                declared[String(words[2])] = String(words[3])
                if words[3] == "counter" { #expect(words[2].hasSuffix("_total")) }
            } else if !line.hasPrefix("#") {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                let family = declared[name] != nil ? name
                    : ["_bucket", "_sum", "_count"].lazy.compactMap { name.hasSuffix($0) ? String(name.dropLast($0.count)) : nil }.first ?? name
                #expect(declared[family] != nil, "sample without a family: \(line)")
            }
        }
        #expect(text.hasSuffix("\n"))
    }

    @Test("a successful reload counts one reload success and observes its duration")
    func reloadCounted() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        driver.advance(by: .seconds(3))
        for slot in 0..<2 {
            let old = driver.pid(ofSlot: slot)!
            driver.send(.notified(pid: driver.pool.slots[slot].successor!.pid!, message: NotifyMessage(ready: true)))
            driver.send(.exited(pid: old, status: .exited(0)))
        }
        let counters = driver.pool.counters
        #expect(counters.rolls[.init(kind: .reload, succeeded: true)] == 1)
        #expect(counters.rollSeconds.count == 1)
        #expect(counters.rollSeconds.sum == 3)
        let text = Self.render(driver)
        #expect(Self.value(text, "hyperglass_rolls_total{kind=\"reload\",outcome=\"success\"}") == "1")
        #expect(Self.value(text, "hyperglass_roll_duration_seconds_bucket{le=\"2.5\"}") == "0")
        #expect(Self.value(text, "hyperglass_roll_duration_seconds_bucket{le=\"5\"}") == "1")
        #expect(Self.value(text, "hyperglass_roll_duration_seconds_bucket{le=\"+Inf\"}") == "1")
    }

    @Test("a reload that fails and rolls back counts once, as a failed reload timed from its start")
    func failedReloadCountedOnce() {
        var driver = Self.running(2)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        // Slot 0 moves to release 2, slot 1's successor dies: the reload rolls slot 0 back.
        let old0 = driver.pid(ofSlot: 0)!
        driver.send(.notified(pid: driver.pool.slots[0].successor!.pid!, message: NotifyMessage(ready: true)))
        driver.send(.exited(pid: old0, status: .exited(0)))
        driver.advance(by: .seconds(2))
        driver.send(.exited(pid: driver.pool.slots[1].successor!.pid!, status: .exited(1)))
        #expect(driver.pool.roll?.kind == .rollback)
        driver.advance(by: .seconds(1))
        driver.send(.notified(pid: driver.pool.slots[0].successor!.pid!, message: NotifyMessage(ready: true)))
        #expect(driver.pool.roll == nil)
        let counters = driver.pool.counters
        #expect(counters.rolls[.init(kind: .reload, succeeded: false)] == 1)
        #expect(counters.rolls.values.reduce(0, +) == 1)
        #expect(counters.rollSeconds.sum == 3)
        let ended = driver.history.compactMap { if case let .report(e) = $0, e.kind == .rollEnded { e } else { nil } }
        #expect(ended.count == 1)
        #expect(ended.first?.level == .error)
        let started = driver.history.compactMap { if case let .report(e) = $0, e.kind == .rollStarted { e } else { nil } }
        #expect(started.map(\.roll) == [.reload], "the rollback is part of its reload, not a roll of its own")
    }

    @Test("a refused reload is a failed reload taking no time, and its log line becomes the report")
    func refusedReload() {
        var driver = Self.running(1)
        let actions = driver.send(.reloadRejected(reason: "supervisor.conf:2: unknown key 'wrokers'"))
        #expect(driver.pool.counters.rolls[.init(kind: .reload, succeeded: false)] == 1)
        #expect(!actions.contains { if case .log = $0 { true } else { false } })
        #expect(actions.logs().count == 1)
    }

    @Test("probe latencies land in the histogram and failed probes are counted")
    func probes() {
        let policy = PoolPolicy.with { $0.health.probePath = "/health" }
        var driver = PoolDriver(desired: 1, policy: policy)
        driver.start()
        let pid = driver.pid(ofSlot: 0)!
        driver.send(.probed(pid: pid, result: ProbeResult(ok: true, latency: .microseconds(800), detail: "200")))
        driver.send(.probed(pid: pid, result: ProbeResult(ok: false, latency: .seconds(2), detail: "timed out after 2s")))
        let text = Self.render(driver)
        #expect(Self.value(text, "hyperglass_probe_duration_seconds_bucket{le=\"0.001\"}") == "1")
        #expect(Self.value(text, "hyperglass_probe_duration_seconds_bucket{le=\"1\"}") == "1")
        #expect(Self.value(text, "hyperglass_probe_duration_seconds_bucket{le=\"2.5\"}") == "2")
        #expect(Self.value(text, "hyperglass_probe_duration_seconds_count") == "2")
        #expect(Self.value(text, "hyperglass_probe_duration_seconds_sum") == "2.0008")
        #expect(Self.value(text, "hyperglass_probe_failures_total") == "1")
    }

    @Test("label values escape backslash, quote and newline; numbers print as Go parses them")
    func escaping() {
        #expect(PrometheusText.escapeLabel("a\\b\"c\nd") == "a\\\\b\\\"c\\nd")
        #expect(PrometheusText.format(3) == "3")
        #expect(PrometheusText.format(0.25) == "0.25")
        #expect(PrometheusText.format(.infinity) == "+Inf")
        var snapshot = MetricsSnapshot(pool: Self.running(1).pool, version: "x\"y", at: PoolDriver.epoch)
        snapshot.listeners = [ListenerBacklog(address: "unix:/run/a\"b.sock", waiting: 3, oldestWait: nil, limit: 2048)]
        let text = PrometheusText.render(snapshot)
        #expect(Self.value(text, "hyperglass_build_info{version=\"x\\\"y\"}") == "1")
        #expect(Self.value(text, "hyperglass_listener_accept_queue_length{listener=\"unix:/run/a\\\"b.sock\"}") == "3")
    }

    @Test("each listener's queue, its limit when known, and its oldest wait: 0 when none waits, absent when the kernel gives no age")
    func listenerQueues() {
        var snapshot = MetricsSnapshot(pool: Self.running(1).pool, version: "v", at: PoolDriver.epoch)
        snapshot.listeners = [ListenerBacklog(address: "127.0.0.1:8001", waiting: 2, oldestWait: .milliseconds(1500), limit: 4096),
                              ListenerBacklog(address: "127.0.0.1:8002", waiting: 0, oldestWait: nil, limit: 4096),
                              ListenerBacklog(address: "unix:/run/app.sock", waiting: 1, oldestWait: nil, limit: nil)]
        let text = PrometheusText.render(snapshot)
        #expect(Self.value(text, "hyperglass_listener_oldest_wait_seconds{listener=\"127.0.0.1:8001\"}") == "1.5")
        #expect(Self.value(text, "hyperglass_listener_oldest_wait_seconds{listener=\"127.0.0.1:8002\"}") == "0")
        #expect(!text.contains("hyperglass_listener_oldest_wait_seconds{listener=\"unix:"))
        #expect(!text.contains("hyperglass_listener_accept_queue_limit{listener=\"unix:"))
        #expect(Self.value(text, "hyperglass_listener_accept_queue_limit{listener=\"127.0.0.1:8001\"}") == "4096")
    }

    @Test("two processes of one slot during a roll are distinct series (worker and pid labels)")
    func successorSeries() {
        var driver = Self.running(1)
        driver.send(.reloadRequested(release: 2, policy: Self.notify))
        var snapshot = MetricsSnapshot(pool: driver.pool, version: "v", at: driver.now)
        for index in snapshot.workers.indices { snapshot.workers[index].residentBytes = 1024 }
        let text = PrometheusText.render(snapshot)
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("hyperglass_worker_resident_memory_bytes{") }
        #expect(lines.count == 2)
        #expect(Set(lines).count == 2)
        #expect(Self.value(text, "hyperglass_workers{state=\"starting\"}") == "1")
        #expect(Self.value(text, "hyperglass_roll_in_progress") == "1")
    }
}
