import Testing
import SupervisorCore
@testable import Supervisor

@Suite("Spawner.environment", .timeLimit(.minutes(1)))
struct SpawnerTests {
    @Test("a worker inherits the supervisor's environment minus systemd's and ours, and configured entries win")
    func environment() {
        let inherited = [
            "PATH=/usr/bin", "NOTIFY_SOCKET=/run/systemd/notify", "LISTEN_FDS=2", "WATCHDOG_USEC=1000", "HYPERGLASS_WORKER_ID=3",
            "APP_ENV=staging", "LANG=C.UTF-8",
        ]
        var settings = Settings()
        settings.environment = ["APP_ENV=production", "EXTRA=1"]
        #expect(Spawner.environment(inherited: inherited, settings: settings) == ["PATH=/usr/bin", "LANG=C.UTF-8", "APP_ENV=production", "EXTRA=1"])
    }
}
