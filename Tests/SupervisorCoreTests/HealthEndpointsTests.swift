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
        #expect(HealthEndpoints.readiness(driver.pool, share: 0, at: driver.now).ok, "0 still needs one worker")
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

    @Test("ready_share in the query: a share or a percentage within 0...1; anything else is ignored", arguments: [
        ("ready_share=0.75", 0.75), ("ready_share=75%", 0.75), ("ready_share=75%25", 0.75), ("a=b&ready_share=1", 1.0),
    ])
    func readyShareQuery(query: String, share: Double) {
        #expect(HealthEndpoints.readyShare(query: query) == share)
    }

    @Test("a bad ready_share is no share", arguments: ["ready_share=2", "ready_share=x", "", "ready_share=-1"])
    func badMinReady(query: String) {
        #expect(HealthEndpoints.readyShare(query: query) == nil)
    }
}
