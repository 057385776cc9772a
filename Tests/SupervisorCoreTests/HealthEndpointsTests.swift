import ControlProtocol
import Testing
@testable import SupervisorCore

/// What /readyz and /livez answer, from the pool alone.
@Suite("Health endpoints: /readyz and /livez", .timeLimit(.minutes(1)))
struct HealthEndpointsTests {
    @Test("/readyz is 200 once half the pool is ready (as hyperglassctl health), ready_share moves that, and 503 once the stop begins")
    func readiness() {
        var driver = PoolDriver(desired: 4, policy: PoolPolicy.with { $0.readiness = .notify })
        driver.start()
        driver.ready(slot: 0)
        let one = HealthEndpoints.readiness(driver.pool, share: ReadyShare.defaultShare, at: driver.now)
        #expect(!one.ok && one.text == "1/4 workers ready (2 needed)")
        #expect(HealthEndpoints.readiness(driver.pool, share: 0, at: driver.now).ok)
        driver.ready(slot: 1)
        #expect(HealthEndpoints.readiness(driver.pool, share: ReadyShare.defaultShare, at: driver.now).ok)
        #expect(!HealthEndpoints.readiness(driver.pool, share: 1, at: driver.now).ok)
        driver.send(.signalReceived(.terminate))
        #expect(HealthEndpoints.readiness(driver.pool, share: ReadyShare.defaultShare, at: driver.now).ok == false, "a draining node leaves the load balancer first")
    }

    @Test("/livez fails only once no worker has been ready for unready_timeout, as systemd's watchdog would")
    func liveness() {
        var driver = PoolDriver(desired: 1, policy: PoolPolicy.with {
            $0.readiness = .notify
            $0.health.unreadyTimeout = .seconds(60)
            $0.readyTimeout = .seconds(600)
        })
        driver.start()
        driver.advance(by: .seconds(59))
        #expect(HealthEndpoints.liveness(driver.pool, at: driver.now).ok)
        driver.advance(by: .seconds(2))
        let dead = HealthEndpoints.liveness(driver.pool, at: driver.now)
        #expect(!dead.ok && dead.text == "no worker has been ready for 1m")
        driver.ready(slot: 0)
        #expect(HealthEndpoints.liveness(driver.pool, at: driver.now).ok)
    }

    @Test("ready_share in the query: a share or a percentage within 0...1", arguments: [
        ("ready_share=0.75", 0.75), ("ready_share=75%", 0.75), ("ready_share=75%25", 0.75), ("a=b&ready_share=1", 1.0),
        ("ready_share=0", 0.0), ("ready_share=100%", 1.0),
    ])
    func readyShareQuery(query: String, share: Double) throws {
        #expect(try ReadyShare.inQuery(query) == share)
    }

    @Test("no ready_share in the query is the default; a bad one is an error, never silently the default",
          arguments: ["ready_share=2", "ready_share=75", "ready_share=x", "ready_share=abc", "ready_share=150%", "ready_share=-1",
                      "ready_share=", "ready_share=0x1", "ready_share=1e-1", "ready_share=nan"])
    func badReadyShare(query: String) throws {
        #expect(throws: ControlError.self) { try ReadyShare.inQuery(query) }
        #expect(try ReadyShare.inQuery("") == nil)
        #expect(try ReadyShare.inQuery("a=b") == nil)
    }

    @Test("the ready rule: share × desired rounded up, at least one, none at share 0; nothing while stopping or stalled")
    func readyRule() {
        #expect(ReadyShare.needed(desired: 10, share: 0.7) == 7, "no binary rounding error")
        #expect(ReadyShare.needed(desired: 3, share: 0.5) == 2)
        #expect(ReadyShare.needed(desired: 4, share: 0.01) == 1)
        #expect(ReadyShare.needed(desired: 4, share: 0) == 0)
        #expect(ReadyShare.isReady(ready: 0, desired: 4, acceptsTraffic: true, stalled: false, share: 0))
        #expect(!ReadyShare.isReady(ready: 4, desired: 4, acceptsTraffic: false, stalled: false, share: 0))
        #expect(!ReadyShare.isReady(ready: 4, desired: 4, acceptsTraffic: true, stalled: true, share: 0), "connections nobody takes")
    }
}
