import Testing
@testable import SupervisorCore

@Suite("Config loader", .timeLimit(.minutes(1)))
struct ConfigLoaderTests {
    private func load(_ text: String, named name: String = "supervisor.conf") throws(ConfigError) -> Settings {
        var loader = ConfigLoader()
        try loader.load(file: text, named: name)
        return loader.settings
    }

    /// The error a file produces, as the operator reads it.
    private func error(_ text: String) -> String? {
        do { _ = try load(text); return nil } catch { return error.description }
    }

    @Test("a file with sections, comments and blank lines sets every kind of key")
    func fullFile() throws {
        let settings = try load("""
            # hyperglass supervisor
            ; a comment of the other kind

            [supervisor]
            workers = 4
            max_workers = 16
            bind = 127.0.0.1:8001
            bind = [::1]:8001
            graceful_timeout = 45s
            control_socket = "/run/hyperglass/control.sock"
            control_group = www-data
            debug = yes
            crash_loop = exit

            [worker]
            command = /usr/bin/python3 -m app --title "my app"
            environment = APP_ENV=production
            environment = LOG_LEVEL=info
            readiness = notify
            ready_timeout = 2m

            [restart]
            backoff_initial = 500ms
            backoff_max = 10s
            backoff_reset = 90
            crash_loop_threshold = 3
            """)
        #expect(settings.workers == .fixed(4))
        #expect(settings.maxWorkers == 16)
        #expect(settings.bind == [.tcp(host: "127.0.0.1", port: 8001), .tcp(host: "::1", port: 8001)])
        #expect(settings.gracefulTimeout == .seconds(45))
        #expect(settings.controlSocket == "/run/hyperglass/control.sock")
        #expect(settings.controlGroup == "www-data")
        #expect(settings.debug)
        #expect(settings.crashLoop == .exit)
        #expect(settings.command == ["/usr/bin/python3", "-m", "app", "--title", "my app"])
        #expect(settings.environment == ["APP_ENV=production", "LOG_LEVEL=info"])
        #expect(settings.readiness == .notify)
        #expect(settings.readyTimeout == .seconds(120))
        #expect(settings.backoff == BackoffPolicy(initial: .milliseconds(500), maximum: .seconds(10), reset: .seconds(90)))
        #expect(settings.crashLoopThreshold == 3)
    }

    @Test("an empty file leaves the defaults, which validate")
    func defaults() throws {
        let settings = try load("")
        #expect(settings == Settings())
        #expect(settings.workers == .auto)
        #expect(settings.bind == [.tcp(host: "localhost", port: 8001)])
        var loader = ConfigLoader()
        try loader.load(file: "\n# nothing\n", named: "x")
        #expect(throws: Never.self) { try loader.validated() }
    }

    @Test("Windows line endings and indentation are tolerated")
    func crlfAndIndent() throws {
        let settings = try load("[supervisor]\r\n  workers = 2\r\n\tdebug=false\r\n")
        #expect(settings.workers == .fixed(2))
        #expect(!settings.debug)
    }

    @Test("a misspelt key is reported with its line and a did-you-mean suggestion")
    func unknownKeySuggestion() {
        #expect(error("[supervisor]\nwrokers = 4") == "supervisor.conf:2: unknown key 'wrokers'; did you mean 'workers'?")
        #expect(error("[worker]\n\n# comment\nready_timout = 5s") == "supervisor.conf:4: unknown key 'ready_timout'; did you mean 'ready_timeout'?")
    }

    @Test("a key nothing resembles is reported without a suggestion")
    func unknownKeyNoSuggestion() {
        #expect(error("[supervisor]\nfrobnicate = 1") == "supervisor.conf:2: unknown key 'frobnicate'")
    }

    @Test("a misspelt section is reported with a suggestion, an unknown one with the list of sections")
    func unknownSection() {
        #expect(error("[wroker]") == "supervisor.conf:1: unknown section [wroker]; did you mean [worker]?")
        #expect(error("# x\n[database]") == "supervisor.conf:2: unknown section [database] (sections: [supervisor], [worker], [restart], [health])")
        #expect(error("[supervisor") == "supervisor.conf:1: a section header must end with ']'")
    }

    @Test("a key in the wrong section names the section it belongs in")
    func wrongSection() {
        #expect(error("[worker]\nworkers = 4") == "supervisor.conf:2: key 'workers' belongs in [supervisor], not [worker]")
        #expect(error("[supervisor]\nworkers = 4\n[restart]\nreadiness = notify") == "supervisor.conf:4: key 'readiness' belongs in [worker], not [restart]")
    }

    @Test("a key before any section header is rejected with the section to use")
    func keyBeforeSection() {
        #expect(error("workers = 4") == "supervisor.conf:1: key 'workers' must come after a section header ([supervisor])")
    }

    @Test("a line that is not key = value is rejected")
    func notKeyValue() {
        #expect(error("[supervisor]\nworkers 4") == "supervisor.conf:2: expected 'key = value', found 'workers 4'")
    }

    @Test("a bad value names the key, the problem and what is accepted")
    func badValue() {
        #expect(error("[supervisor]\n\nworkers = lots") == "supervisor.conf:3: workers: 'lots' is not a whole number; expected 'auto' (2 x CPUs), a number from 1 to max_workers, or auto:MIN-MAX to autoscale (e.g. auto:1-16)")
        #expect(error("[supervisor]\nbind = localhost") == "supervisor.conf:2: bind: 'localhost' is not HOST:PORT, [IPV6]:PORT or unix:PATH; expected HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH")
        #expect(error("[worker]\nreadiness = sometimes") == "supervisor.conf:2: readiness: 'sometimes' is not one of: accepting, exec, notify, http; expected accepting, exec, notify or http")
        #expect(error("[restart]\ncrash_loop_threshold = 0") == "supervisor.conf:2: crash_loop_threshold: 0 is out of range (1 to 1000); expected a number from 1 to 1000")
    }

    @Test("the file's name is used in error locations")
    func fileNameInLocation() {
        var loader = ConfigLoader()
        #expect(throws: ConfigError(location: "/etc/hyperglass/hyperglass.conf:1", message: "key 'debug' must come after a section header ([supervisor])")) {
            try loader.load(file: "debug = true", named: "/etc/hyperglass/hyperglass.conf")
        }
    }

    @Test("a single-valued key set twice in the file is an error; repeatable keys accumulate")
    func duplicates() throws {
        #expect(error("[supervisor]\nworkers = 2\nworkers = 3") == "supervisor.conf:3: key 'workers' is set twice; it takes one value")
        let settings = try load("[supervisor]\nbind = :8001\nbind = :8002\nbind = unix:/run/app.sock")
        #expect(settings.bind == [.tcp(host: nil, port: 8001), .tcp(host: nil, port: 8002), .unix(path: "/run/app.sock")])
    }

    @Test("quotes around a value are removed, but a command keeps them as word syntax")
    func quoting() throws {
        let settings = try load("[supervisor]\ncontrol_group = 'staff'\n[worker]\ncommand = \"/opt/my app/server\"\nenvironment = \"GREETING=hi there\"")
        #expect(settings.controlGroup == "staff")
        #expect(settings.command == ["/opt/my app/server"])
        #expect(settings.environment == ["GREETING=hi there"])
    }

    @Test("HYPERGLASS_* variables override the file, and a list variable replaces the file's list")
    func environmentLayer() throws {
        var loader = ConfigLoader()
        try loader.load(file: "[supervisor]\nworkers = 2\nbind = :8001\nbind = :8002\n[worker]\nenvironment = A=1", named: "f")
        try loader.load(environment: [
            "HYPERGLASS_WORKERS": "8",
            "HYPERGLASS_BIND": "127.0.0.1:9000, unix:/run/a.sock",
            "HYPERGLASS_READY_TIMEOUT": " 5s ",
            "HYPERGLASS_WORKER_ID": "3",
            "HYPERGLASS_NOT_A_KEY": "x",
            "PATH": "/usr/bin",
        ])
        let settings = loader.settings
        #expect(settings.workers == .fixed(8))
        #expect(settings.bind == [.tcp(host: "127.0.0.1", port: 9000), .unix(path: "/run/a.sock")])
        #expect(settings.readyTimeout == .seconds(5))
        #expect(settings.environment == ["A=1"])
    }

    @Test("a bad HYPERGLASS_* value is reported under the variable's name")
    func environmentError() {
        var loader = ConfigLoader()
        #expect(throws: ConfigError(location: "HYPERGLASS_GRACEFUL_TIMEOUT", message: "graceful_timeout: 'soon' is not a duration (use e.g. 500ms, 30s, 2m); expected a duration such as 30s, 500ms or 2m")) {
            try loader.load(environment: ["HYPERGLASS_GRACEFUL_TIMEOUT": "soon"])
        }
    }

    @Test("flags override the environment, and repeated --bind flags replace the earlier list")
    func flagsLayer() throws {
        var loader = ConfigLoader()
        try loader.load(file: "[supervisor]\nbind = :8001\nworkers = 2", named: "f")
        try loader.load(environment: ["HYPERGLASS_BIND": ":9001", "HYPERGLASS_WORKERS": "3"])
        loader.beginFlags()
        try loader.apply(flag: ConfigKey.named("bind")!, value: "[::1]:7001")
        try loader.apply(flag: ConfigKey.named("bind")!, value: "unix:@hyperglass")
        try loader.apply(flag: ConfigKey.named("workers")!, value: "4")
        try loader.apply(flag: ConfigKey.named("workers")!, value: "5")
        let settings = try loader.validated()
        #expect(settings.bind == [.tcp(host: "::1", port: 7001), .unix(path: "@hyperglass")])
        #expect(settings.workers == .fixed(5))
    }

    @Test("a bad flag value is reported under the flag's name")
    func flagError() {
        var loader = ConfigLoader()
        loader.beginFlags()
        #expect(throws: ConfigError(location: "--ready-timeout", message: "ready_timeout: 'x' is not a duration (use e.g. 500ms, 30s, 2m); expected a duration such as 60s")) {
            try loader.apply(flag: ConfigKey.named("ready_timeout")!, value: "x")
        }
    }

    @Test("a layer that does not mention a list keeps the earlier layer's list")
    func untouchedListSurvives() throws {
        var loader = ConfigLoader()
        try loader.load(file: "[supervisor]\nbind = :8001\nbind = :8002", named: "f")
        try loader.load(environment: [:])
        loader.beginFlags()
        #expect(loader.settings.bind.count == 2)
    }

    @Test("each key has one name for the file, the flag and the environment")
    func keyNames() {
        let key = ConfigKey.named("ready_timeout")!
        #expect(key.flag == "--ready-timeout")
        #expect(key.environmentVariable == "HYPERGLASS_READY_TIMEOUT")
        #expect(key.section == "worker")
        #expect(ConfigKey.named("nope") == nil)
        #expect(Set(ConfigKey.all.map(\.name)).count == ConfigKey.all.count)
        #expect(ConfigKey.all.allSatisfy { ConfigKey.sections.contains($0.section) })
    }

    @Test("validation catches more workers than max_workers")
    func tooManyWorkers() throws {
        var loader = ConfigLoader()
        try loader.load(file: "[supervisor]\nworkers = 10\nmax_workers = 8", named: "f")
        #expect(throws: ConfigError(location: "workers", message: "10 workers exceed max_workers (8); raise max_workers or lower workers")) {
            try loader.validated()
        }
    }

    @Test("validation catches a backoff that starts above its maximum")
    func backoffOrder() throws {
        var loader = ConfigLoader()
        try loader.load(file: "[restart]\nbackoff_initial = 1m\nbackoff_max = 30s", named: "f")
        #expect(throws: ConfigError(location: "backoff_initial", message: "backoff_initial (1m) is longer than backoff_max (30s)")) {
            try loader.validated()
        }
    }

    @Test("validation catches an empty list of addresses")
    func noBind() {
        var settings = Settings()
        settings.bind = []
        #expect(throws: ConfigError(location: "bind", message: "no address to listen on; set bind = HOST:PORT")) {
            try ConfigLoader(settings).validated()
        }
    }

    @Test("suggestions find the closest name within a small distance", arguments: [
        ("wrokers", "workers"), ("max_worker", "max_workers"), ("readines", "readiness"),
        ("command", "command"), ("backof_max", "backoff_max"), ("xyz", nil), ("timeout", nil),
    ] as [(String, String?)])
    func suggestion(word: String, expected: String?) {
        #expect(Suggestion.closest(to: word, among: ConfigKey.all.map(\.name)) == expected)
    }
}

@Suite("Config values that make no sense are refused", .timeLimit(.minutes(1)))
struct ConfigRefusalTests {
    private func error(_ text: String) -> String? {
        var loader = ConfigLoader()
        do { try loader.load(file: text, named: "supervisor.conf"); _ = try loader.validated(); return nil } catch { return error.description }
    }

    @Test("backoff_initial = 0 is refused with its line and what is accepted (it hung the supervisor)")
    func zeroBackoff() {
        #expect(error("[restart]\nbackoff_initial = 0\n") == "supervisor.conf:2: backoff_initial: '0' is too short; expected a duration of at least 10ms such as 1s")
        #expect(error("[restart]\nbackoff_initial = 5ms\n") != nil)
        #expect(error("[restart]\nbackoff_initial = 10ms\n") == nil)
    }

    @Test("backlog_wait is 0 or from 100ms to 1m: shorter judges a connection that just arrived, longer holds every reload open that long")
    func backlogWaitBounds() {
        #expect(error("[health]\nbacklog_wait = 50ms\n") == "supervisor.conf:2: backlog_wait: '50ms' is too short (use 0 for none, or at least 100ms); expected a duration from 100ms to 1m such as 2s, or 0 for none")
        #expect(error("[health]\nbacklog_wait = 61s\n")?.contains("'61s' is too long (at most 1m; use 0 for none)") == true)
        for ok in ["0", "100ms", "2s", "1m"] { #expect(error("[health]\nbacklog_wait = \(ok)\n") == nil, "\(ok)") }
    }

    @Test("backoff_max below backoff_initial is refused")
    func maxBelowInitial() {
        #expect(error("[restart]\nbackoff_initial = 2s\nbackoff_max = 1s\n")?.contains("longer than backoff_max") == true)
        #expect(error("[restart]\nbackoff_max = 0\n")?.contains("longer than backoff_max") == true)
    }

    @Test("memory ceilings under 1M or in fractions of a byte are refused; 0 still means none")
    func memoryCeiling() {
        #expect(error("[worker]\nmax_memory = 0.5\n") == "supervisor.conf:2: max_memory: '0.5' is not a whole number of bytes; expected a size of at least 1M such as 512M or 2G, or 0 for none")
        #expect(error("[worker]\nmax_memory = 1B\n") == "supervisor.conf:2: max_memory: '1B' is below 1M, less than any worker uses; expected a size of at least 1M such as 512M or 2G, or 0 for none")
        #expect(error("[worker]\nmax_memory = 1023K\n") != nil)
        #expect(error("[worker]\nmax_memory = 1M\n") == nil)
        #expect(error("[worker]\nmax_memory = 1.5M\n") == nil)
        #expect(error("[worker]\nmax_memory = 0\n") == nil)
    }
}

@Suite("Config errors for readers")
struct ConfigErrorRedactionTests {
    @Test("what status keeps of a config error names the place but not the quoted line or value")
    func quotedTextIsLeftOut() {
        let error = ConfigError(location: "supervisor.conf:2", message: "environment: 'API_TOKEN: s3cr3t-value' is not KEY=VALUE; expected KEY=VALUE")
        #expect(error.withoutQuotedText == "supervisor.conf:2: environment: '…' is not KEY=VALUE; expected KEY=VALUE")
        #expect(ConfigError(location: "f:1", message: "found 'x = it's").withoutQuotedText == "f:1: found '…'s")
        // An unmatched quote hides what follows it too.
        #expect(ConfigError(location: "f:1", message: "found 'x = y").withoutQuotedText == "f:1: found '…'")
    }
}
