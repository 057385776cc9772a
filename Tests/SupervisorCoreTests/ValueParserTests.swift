import Testing
@testable import SupervisorCore

@Suite("Value parsers", .timeLimit(.minutes(1)))
struct ValueParserTests {
    private func failure<T>(_ parse: () throws(ConfigValueError) -> T) -> String? {
        do { _ = try parse(); return nil } catch { return error.message }
    }

    // MARK: Durations

    @Test("durations take ms, s, m and h; a bare number is seconds", arguments: [
        ("500ms", Duration.milliseconds(500)),
        ("30s", .seconds(30)),
        ("2m", .seconds(120)),
        ("1h", .seconds(3600)),
        ("45", .seconds(45)),
        ("1.5s", .milliseconds(1500)),
        ("0", .zero),
        ("0.25", .milliseconds(250)),
    ])
    func durations(text: String, expected: Duration) throws {
        #expect(try ValueParser.duration(text) == expected)
    }

    @Test("malformed, negative or absurd durations are rejected", arguments: [
        "", "soon", "-1s", "10 s", "5min", "1d", "ms", "inf", "nan", "9000h",
    ])
    func badDurations(text: String) {
        #expect(failure { () throws(ConfigValueError) in try ValueParser.duration(text) } == "'\(text)' is not a duration (use e.g. 500ms, 30s, 2m)")
    }

    // MARK: Numbers, booleans, words

    @Test("integers must be whole and in range")
    func integers() throws {
        #expect(try ValueParser.integer("7", in: 1...10) == 7)
        #expect(failure { () throws(ConfigValueError) in try ValueParser.integer("11", in: 1...10) } == "11 is out of range (1 to 10)")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.integer("2.5", in: 1...10) } == "'2.5' is not a whole number")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.integer("", in: 1...10) } == "'' is not a whole number")
    }

    @Test("booleans accept the usual spellings, in any case")
    func booleans() throws {
        for yes in ["true", "YES", "On", "1"] { #expect(try ValueParser.boolean(yes)) }
        for no in ["false", "No", "OFF", "0"] { #expect(try !ValueParser.boolean(no)) }
        #expect(failure { () throws(ConfigValueError) in try ValueParser.boolean("maybe") } == "'maybe' is not true or false")
    }

    @Test("choices list the accepted values when one does not match")
    func choices() throws {
        #expect(try ValueParser.choice("keep-trying", CrashLoopPolicy.self) == .keepTrying)
        #expect(failure { () throws(ConfigValueError) in try ValueParser.choice("Exit", CrashLoopPolicy.self) } == "'Exit' is not one of: keep-trying, exit")
    }

    @Test("words, absolute paths and KEY=VALUE entries are checked")
    func simpleForms() throws {
        #expect(try ValueParser.word("www-data") == "www-data")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.word("two words") } != nil)
        #expect(failure { () throws(ConfigValueError) in try ValueParser.word("") } != nil)
        #expect(try ValueParser.absolutePath("/run/x.sock") == "/run/x.sock")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.absolutePath("run/x.sock") } == "'run/x.sock' is not an absolute path")
        #expect(try ValueParser.environmentEntry("DATABASE_URL=postgres://x?a=b") == "DATABASE_URL=postgres://x?a=b")
        #expect(try ValueParser.environmentEntry("EMPTY=") == "EMPTY=")
        for bad in ["=x", "NOEQUALS", "BAD-NAME=1", "A B=1"] {
            #expect(failure { () throws(ConfigValueError) in try ValueParser.environmentEntry(bad) } == "'\(bad)' is not KEY=VALUE")
        }
    }

    // MARK: Bind addresses

    @Test("bind addresses take HOST:PORT, [IPV6]:PORT, :PORT and unix:PATH", arguments: [
        ("127.0.0.1:8001", BindAddress.tcp(host: "127.0.0.1", port: 8001)),
        ("localhost:80", .tcp(host: "localhost", port: 80)),
        ("[::1]:8001", .tcp(host: "::1", port: 8001)),
        ("[::]:65535", .tcp(host: "::", port: 65535)),
        (":8001", .tcp(host: nil, port: 8001)),
        ("unix:/run/hyperglass.sock", .unix(path: "/run/hyperglass.sock")),
        ("unix:@abstract", .unix(path: "@abstract")),
    ])
    func bindForms(text: String, expected: BindAddress) throws {
        let address = try ValueParser.bindAddress(text)
        #expect(address == expected)
        #expect(address.description == text)
    }

    @Test("bad bind addresses are rejected", arguments: [
        "localhost", "8001", "::1:8001", "[::1]8001", "[::1", "host:", "host:0", "host:65536", "host:http",
        "unix:relative.sock", "unix:", "[::1]:",
    ])
    func badBinds(text: String) {
        #expect(failure { () throws(ConfigValueError) in try ValueParser.bindAddress(text) } != nil)
    }

    @Test("a relative unix path is rejected with the fix in the message")
    func relativeUnixMessage() {
        #expect(failure { () throws(ConfigValueError) in try ValueParser.bindAddress("unix:app.sock") } == "'unix:app.sock': a unix socket path must be absolute (unix:/run/app.sock)")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.bindAddress("host:99999") } == "'host:99999': the port must be a number from 1 to 65535")
    }

    // MARK: Command lines

    @Test("command lines split into words like a shell, quotes and backslashes included", arguments: [
        ("hyperglass-worker", ["hyperglass-worker"]),
        ("python3 -m app", ["python3", "-m", "app"]),
        ("  spaced \t out  ", ["spaced", "out"]),
        ("app --title \"my app\"", ["app", "--title", "my app"]),
        ("app --title 'my app'", ["app", "--title", "my app"]),
        ("echo 'a \"b\" c'", ["echo", "a \"b\" c"]),
        ("echo \"it's\"", ["echo", "it's"]),
        ("a\\ b c", ["a b", "c"]),
        ("\"say \\\"hi\\\"\"", ["say \"hi\""]),
        ("pre\"fix\"'ed'", ["prefixed"]),
        ("app ''", ["app", ""]),
        ("'back\\slash'", ["back\\slash"]),
        ("\"a\\\\b\"", ["a\\b"]),
    ] as [(String, [String])])
    func commandLines(text: String, words: [String]) throws {
        #expect(try ValueParser.commandLine(text) == words)
    }

    @Test("inside double quotes a backslash escapes only $, `, \" and \\, as in sh", arguments: [
        ("\"C:\\dir\"", ["C:\\dir"]),
        ("grep \"\\d+\"", ["grep", "\\d+"]),
        ("echo \"\\$HOME\"", ["echo", "$HOME"]),
    ] as [(String, [String])])
    func doubleQuoteBackslash(text: String, words: [String]) throws {
        #expect(try ValueParser.commandLine(text) == words)
    }

    @Test("an unterminated quote, a trailing backslash or an empty command is rejected")
    func badCommandLines() {
        #expect(failure { () throws(ConfigValueError) in try ValueParser.commandLine("app \"oops") } == "unterminated quote in 'app \"oops'")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.commandLine("app 'oops") } == "unterminated quote in 'app 'oops'")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.commandLine("app \\") } != nil)
        #expect(failure { () throws(ConfigValueError) in try ValueParser.commandLine("") } == "the command is empty")
        #expect(failure { () throws(ConfigValueError) in try ValueParser.commandLine("   ") } == "the command is empty")
    }
}
