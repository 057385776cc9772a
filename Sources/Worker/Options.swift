/// The command line: how to listen when run alone, and how long a drain may take.
struct Options: Equatable {
    /// `--bind` addresses, used only when no socket is inherited through LISTEN_FDS.
    var binds: [String] = []
    /// `--drain-timeout` (or HYPERGLASS_DRAIN_TIMEOUT), in nanoseconds.
    var drainTimeout: UInt64 = 25 * nanosecondsPerSecond
    /// `--idle-timeout`: how long a keep-alive connection may sit unused.
    var idleTimeout: UInt64 = 60 * nanosecondsPerSecond
    /// `--request-timeout`: how long a request, or a WebSocket frame, may take from its first byte.
    var requestTimeout: UInt64 = 30 * nanosecondsPerSecond
    /// `--max-connections` (or HYPERGLASS_MAX_CONNECTIONS): connections served at once; 0, no cap.
    var maxConnections = 0
    /// `--websocket-idle-timeout` (or HYPERGLASS_WEBSOCKET_IDLE_TIMEOUT), in nanoseconds; 0, never.
    var webSocketIdleTimeout: UInt64 = 0
    var help = false

    struct UsageError: Error, Equatable {
        let message: String
    }

    static let usage = "hyperglass-worker [--bind HOST:PORT | --bind unix:PATH]... [--drain-timeout DURATION] [--idle-timeout DURATION] [--request-timeout DURATION] [--max-connections N] [--websocket-idle-timeout DURATION]"

    static let helpText = """
        hyperglass-worker: the reference HTTP/1.1 and WebSocket worker for the hyperglass supervisor.

        Usage: \(usage)

        Under `hyperglass start` it serves the listening sockets it inherits (LISTEN_FDS, as systemd's
        socket activation passes them), reports READY=1, STOPPING=1 and WATCHDOG=1 to NOTIFY_SOCKET,
        and drains gracefully on SIGTERM or SIGINT: it stops accepting, finishes in-flight requests,
        closes WebSockets with code 1001 and exits 0. A second signal exits at once.

        Options:
          --bind ADDRESS          Listen here when no socket is inherited (repeatable): 127.0.0.1:8001,
                                  [::1]:8001, :8001 (all interfaces), unix:/run/app.sock, unix:@abstract.
          --drain-timeout D       Cut what is still open this long after SIGTERM (default 25s;
                                  env HYPERGLASS_DRAIN_TIMEOUT). Durations: 500ms, 25s, 1m, or seconds.
          --idle-timeout D        Close keep-alive connections unused this long (default 60s).
          --request-timeout D     A request (head and body) or a WebSocket frame must arrive whole
                                  within this of its first byte, else 408 or close 1008 (default 30s).
          --max-connections N     Serve at most N connections at once (WebSockets included; default 0,
                                  no cap; env HYPERGLASS_MAX_CONNECTIONS). At the cap the worker stops
                                  accepting, so other workers take new connections; when every worker
                                  is full (the accept queue stays non-empty ~1 s), what waits gets 503
                                  with Retry-After (a WebSocket handshake too); nothing open is touched.
          --websocket-idle-timeout D
                                  Ping a WebSocket that sent nothing for D; close it with 1001 if it
                                  stays silent (no pong) for D more (default off; env
                                  HYPERGLASS_WEBSOCKET_IDLE_TIMEOUT).
          -h, --help              Show this help.

        Routes:
          GET /             hello from hyperglass-worker <id>
          GET /health       200 "ok" while serving, 503 once draining
          GET /whoami       {"worker_id": "<id>", "pid": N}
          GET /sleep?ms=N   answers after N ms (up to 600000), without blocking other requests
          GET /ws           WebSocket echo (RFC 6455)

        Environment: HYPERGLASS_WORKER_ID names the worker in logs and responses. Under the supervisor,
        set the variables above with `environment = HYPERGLASS_MAX_CONNECTIONS=2500` in [worker].
        """

    /// Parses arguments (without the program name); the environment's values are the defaults.
    static func parse(_ arguments: [String], environment: (String) -> String?) throws(UsageError) -> Options {
        var options = Options()
        func durationVariable(_ name: String) throws(UsageError) -> UInt64? {
            guard let text = environment(name), !text.isEmpty else { return nil }
            guard let value = duration(text) else {
                throw UsageError(message: "\(name)='\(text)' is not a duration; use e.g. 25s, 500ms or 1m")
            }
            return value
        }
        if let value = try durationVariable("HYPERGLASS_DRAIN_TIMEOUT") { options.drainTimeout = value }
        if let value = try durationVariable("HYPERGLASS_WEBSOCKET_IDLE_TIMEOUT") { options.webSocketIdleTimeout = value }
        if let text = environment("HYPERGLASS_MAX_CONNECTIONS"), !text.isEmpty {
            guard let value = Int(text), value >= 0 else {
                throw UsageError(message: "HYPERGLASS_MAX_CONNECTIONS='\(text)' is not a count; use a whole number (0 for no cap)")
            }
            options.maxConnections = value
        }
        var index = 0
        func value(_ flag: String, _ inline: String?) throws(UsageError) -> String {
            if let inline { return inline }
            index += 1
            guard index < arguments.count else { throw UsageError(message: "\(flag) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            let flag = parts[0]
            let inline = parts.count > 1 ? parts[1] : nil
            switch flag {
            case "-h", "--help":
                options.help = true
            case "--bind", "-b":
                options.binds.append(try value(flag, inline))
            case "--max-connections":
                let text = try value(flag, inline)
                guard let count = Int(text), count >= 0 else {
                    throw UsageError(message: "--max-connections '\(text)' is not a count; use a whole number (0 for no cap)")
                }
                options.maxConnections = count
            case "--drain-timeout", "--idle-timeout", "--request-timeout", "--websocket-idle-timeout":
                let text = try value(flag, inline)
                guard let parsed = duration(text) else {
                    throw UsageError(message: "\(flag) '\(text)' is not a duration; use e.g. 25s, 500ms or 1m")
                }
                switch flag {
                case "--drain-timeout": options.drainTimeout = parsed
                case "--idle-timeout": options.idleTimeout = parsed
                case "--websocket-idle-timeout": options.webSocketIdleTimeout = parsed
                default: options.requestTimeout = parsed
                }
            default:
                throw UsageError(message: "unknown option '\(argument)'")
            }
            index += 1
        }
        return options
    }

    /// A duration in nanoseconds: "500ms", "25s", "1m", or a bare number of seconds.
    static func duration(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [("ms", 1_000_000), ("s", nanosecondsPerSecond), ("m", 60 * nanosecondsPerSecond)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = UInt64(text.dropLast(suffix.count)) else { return nil }
            return number.multipliedReportingOverflow(by: scale).overflow ? nil : number * scale
        }
        guard let seconds = UInt64(text) else { return nil }
        return seconds.multipliedReportingOverflow(by: nanosecondsPerSecond).overflow ? nil : seconds * nanosecondsPerSecond
    }
}
