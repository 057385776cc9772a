import Testing
@testable import SupervisorCore

/// What /readyz and /livez answer, from the pool alone.
@Suite("Health endpoints: /readyz and /livez", .timeLimit(.minutes(1)))
struct HealthEndpointsTests {
    @Test("/readyz is 503 until a worker is ready, 200 while one is, and 503 as soon as the stop begins")
    func readiness() {
        var driver = PoolDriver(desired: 2, policy: PoolPolicy.with { $0.readiness = .notify })
        driver.start()
        #expect(HealthEndpoints.readiness(driver.pool, at: driver.now).ok == false)
        driver.ready(slot: 0)
        let partial = HealthEndpoints.readiness(driver.pool, at: driver.now)
        #expect(partial.ok && partial.text == "1/2 workers ready")
        driver.send(.signalReceived(.terminate))
        #expect(HealthEndpoints.readiness(driver.pool, at: driver.now).ok == false, "a draining node leaves the load balancer first")
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
}
