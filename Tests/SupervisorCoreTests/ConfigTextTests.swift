import Testing
@testable import SupervisorCore

@Suite("Configuration text (check-config) and restart-needed keys", .timeLimit(.minutes(1)))
struct ConfigTextTests {
    /// A file that sets every key to something other than its default, with values that are easy to print inexactly.
    static let everyKey = """
        [supervisor]
        workers = 3
        max_workers = 12
        bind = 127.0.0.1:8001
        bind = [::1]:8002
        bind = :8003
        bind = unix:/run/app.sock
        nonblocking = true
        graceful_timeout = 1.25s
        lame_duck = 7s
        control_socket = /run/hyperglass/control.sock
        control_group = www-data
        metrics_bind = 127.0.0.1:9101
        debug = true
        crash_loop = exit
        watchdog_requires_ready = false
        unready_timeout = 90s
        scale_down_delay = 45s
        prestart = /usr/bin/sh -c 'echo "built"'
        [worker]
        command = /usr/bin/python3 -m app --title "my app" 'it''s'
        environment = APP_ENV=production
        environment = EMPTY=
        readiness = http
        ready_timeout = 1500ms
        min_ready = 750ms
        max_surge = 2
        watchdog = 150.5ms
        watchdog_signal = SIGQUIT
        max_memory = 1536K
        memory_max = 1G
        [restart]
        backoff_initial = 250ms
        backoff_max = 7s
        backoff_reset = 2m
        crash_loop_threshold = 4
        [health]
        health_path = /healthz
        health_interval = 2.5s
        health_timeout = 333ms
        health_failures = 7
        health_grace = 45s
        backlog_wait = 1.5s
        """

    private func parse(_ text: String) throws -> Settings {
        var loader = ConfigLoader()
        try loader.load(file: text, named: "supervisor.conf")
        return try loader.validated()
    }

    @Test("every key round-trips: parse, render for check-config, parse again gives the same settings")
    func everyKeyRoundTrips() throws {
        let settings = try parse(Self.everyKey)
        let text = settings.configurationText(header: "# test")
        #expect(try parse(text) == settings, "\(text)")
        for key in ConfigKey.all {
            #expect(text.contains("\n\(key.name) = "), "check-config does not print \(key.name):\n\(text)")
            // The fixture must move every key off its default, or a key that renders nothing would pass unseen.
            #expect(key.values(in: settings) != key.values(in: Settings()), "the fixture leaves \(key.name) at its default")
        }
    }

    @Test("the defaults round-trip, unset keys printed as comments")
    func defaultsRoundTrip() throws {
        var settings = Settings()
        settings.command = ["/usr/bin/hyperglass-worker"]
        let text = settings.configurationText(header: "# test")
        #expect(text.contains("#health_path =    # no HTTP probes\n"))
        #expect(text.contains("#health_grace =    # ready_timeout\n"))
        // Every key appears, set or not (control_socket, control_group and environment were missing when unset).
        for name in ["control_socket", "control_group", "environment", "metrics_bind"] {
            #expect(text.contains("\n#\(name) =    # "), "\(name) is missing from:\n\(text)")
        }
        #expect(try parse(text) == settings)
    }

    @Test("a note is a comment line before its key's line, and the text with notes loads as it is")
    func notes() throws {
        var settings = Settings()
        settings.command = ["/usr/bin/hyperglass-worker"]
        let text = settings.configurationText(header: "# h", notes: ["workers": "4 on this machine"])
        #expect(text.hasPrefix("# h\n[supervisor]\n# workers: 4 on this machine\nworkers = auto\n"))
        #expect(try parse(text) == settings, "\(text)")
    }

    @Test("durations print exactly: the short form when it is exact, else milliseconds or full seconds")
    func durationText() {
        #expect(Duration.seconds(30).configText == "30s")
        #expect(Duration.seconds(120).configText == "2m")
        #expect(Duration.milliseconds(1500).configText == "1.5s")
        #expect(Duration.milliseconds(1250).configText == "1250ms")
        #expect(Duration.microseconds(1500).configText == "0.0015s")
        #expect(Duration.zero.configText == "0ms")
    }

    @Test("sizes print exactly: whole mebibytes in M, else K or bytes")
    func sizeText() {
        #expect(ValueParser.sizeText(512 << 20) == "512M")
        #expect(ValueParser.sizeText(2 << 30) == "2048M")
        #expect(ValueParser.sizeText(1536 << 10) == "1536K")
        #expect(ValueParser.sizeText((1 << 20) + 1) == "1048577")
    }

    @Test("only bind, nonblocking, control_socket, control_group, metrics_bind, debug and prestart need a restart, and only when they changed")
    func restartNeeded() throws {
        let running = try parse(Self.everyKey)
        var changed = running
        changed.workers = .fixed(5)
        changed.readiness = .notify
        changed.health.maxMemory = nil
        #expect(changed.restartNeeded(comparedTo: running).isEmpty)
        changed.bind.removeLast()
        changed.debug = false
        changed.controlGroup = nil
        #expect(changed.restartNeeded(comparedTo: running) == ["bind", "control_group", "debug"])
        changed.controlSocket = "/run/other.sock"
        #expect(changed.restartNeeded(comparedTo: running) == ["bind", "control_socket", "control_group", "debug"])
        #expect(ConfigKey.all.filter { !$0.reloadable }.map(\.name) == ["bind", "nonblocking", "control_socket", "control_group", "metrics_bind", "debug", "prestart"])
    }
}
