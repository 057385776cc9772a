import Testing
@testable import SupervisorCore

/// `workers = auto:MIN-MAX` and `scale_down_delay`: how autoscaling is turned on and tuned.
@Suite("Config: autoscaling", .timeLimit(.minutes(1)))
struct AutoscaleConfigTests {
    private func load(_ text: String) throws(ConfigError) -> Settings {
        var loader = ConfigLoader()
        try loader.load(file: text, named: "supervisor.conf")
        return try loader.validated()
    }

    private func error(_ text: String) -> String? {
        do { _ = try load(text); return nil } catch { return error.description }
    }

    @Test("workers = auto:MIN-MAX turns autoscaling on and the pool starts at MIN")
    func rangeTurnsAutoscalingOn() throws {
        let settings = try load("[supervisor]\nworkers = auto:2-16\nscale_down_delay = 45s")
        #expect(settings.autoscaleRange == 2...16)
        #expect(settings.workers.resolve(onlineCPUs: 8, debug: false) == 2)
        #expect(settings.workers.description == "auto:2-16")
        let scaler = Autoscaler(settings: settings, onlineCPUs: 8)
        #expect(scaler?.policy.floor == 2)
        #expect(scaler?.policy.ceiling == 16)
        #expect(scaler?.policy.downDelay == .seconds(45))
        #expect(scaler?.policy.cpus == 8)
    }

    @Test("autoscaling is off by default and with a fixed count or plain auto")
    func offByDefault() throws {
        #expect(try load("[supervisor]").autoscaleRange == nil)
        #expect(try load("[supervisor]\nworkers = auto").autoscaleRange == nil)
        #expect(try load("[supervisor]\nworkers = 4").autoscaleRange == nil)
        #expect(Autoscaler(settings: try load("[supervisor]\nworkers = 4"), onlineCPUs: 2) == nil)
    }

    @Test("check-config prints the range and the delay, and its text reads back the same")
    func roundTrips() throws {
        let settings = try load("[supervisor]\nworkers = auto:3-12\nmax_workers = 12\nscale_down_delay = 1.5m")
        let text = settings.configurationText(header: "# test")
        #expect(text.contains("\nworkers = auto:3-12\n"), "\(text)")
        #expect(text.contains("\nscale_down_delay = 90s\n") || text.contains("\nscale_down_delay = 1.5m\n"), "\(text)")
        #expect(try load(text) == settings)
    }

    @Test("a bad range says what is accepted")
    func badRanges() {
        #expect(error("[supervisor]\nworkers = auto:8-2")?.contains("auto:8-2 has its minimum above its maximum") == true)
        #expect(error("[supervisor]\nworkers = auto:4")?.contains("'auto:4' is not a range; write auto:MIN-MAX, e.g. auto:1-16") == true)
        #expect(error("[supervisor]\nworkers = auto:0-4")?.contains("0 is out of range (1 to 1024)") == true)
        #expect(error("[supervisor]\nmax_workers = 8\nworkers = auto:1-16")
                == "workers: autoscaling up to 16 workers exceeds max_workers (8); raise max_workers or lower the range's maximum")
        #expect(error("[supervisor]\nscale_down_delay = 100ms")?.contains("100ms is too short") == true)
    }
}
