import CHyperglass
import ControlProtocol
import Glibc
import SystemCalls

/// hyperglassctl: the operator's view of a running `hyperglass start`, over its control socket.
let usage = """
    Usage: hyperglassctl [--socket PATH] COMMAND

    Commands:
      status [--json]          supervisor and per-worker state (a table, or JSON for scripts)
      status --watch [--interval S]
                               the status table, redrawn every S seconds (default 1) until Ctrl-C
      metrics                  the pool's metrics in the Prometheus text format (as metrics_bind serves them)
      events                   follow the pool's events as JSON lines (spawned, ready, exited, restart, ...)
                               until the supervisor stops; a reader that falls behind is dropped
      workers                  print the desired worker count
      workers N|+N|-N [--wait] set the count, or change it by N; --wait returns once the pool has it
                               (exit 0), or at once with exit 1 while a worker crash-loops or cannot
                               start for want of resources; with autoscaling (workers = auto:MIN-MAX)
                               this pins the count
      workers auto             let autoscaling decide the count again
      reload [--wait]          re-read the configuration and replace every worker, max_surge starting at
                               once, each new one ready for min_ready before its predecessor drains;
                               --wait shows the roll advancing (a live line on a terminal, a line per
                               step otherwise) and returns when it finished (exit 0) or failed and was
                               rolled back (exit 1)
      restart ID|all [--wait]  replace one worker, or all of them, the same graceful way
      upgrade [--wait] [PATH]  replace the supervisor's program in place with the binary at PATH (default:
                               the installed one): same pid, same workers. PATH is checked first and the
                               upgrade refused, with the reason, if it cannot take over; --wait returns
                               once the new program has taken over (exit 0) or the upgrade failed (exit 1)
      ping                     check that the supervisor answers
      health [--ready-share SHARE]
                               for orchestrators' exec probes and HEALTHCHECK: exit 0 while at least
                               SHARE of the desired workers are ready (0.5 by default; 0..1 or 0%..100%;
                               0 only asks that the supervisor answers), 1 otherwise, while it drains or
                               when no supervisor answers; one line says why either way
      version                  the supervisor's version and protocol

    The socket is --socket PATH, else $HYPERGLASS_CONTROL_SOCKET, else $RUNTIME_DIRECTORY/control.sock,
    else /run/hyperglass/control.sock (root) or $XDG_RUNTIME_DIR/hyperglass/control.sock.

    Exit status: 0 success, 1 the supervisor refused (message on stderr), 2 usage error,
    3 no supervisor is listening at the socket path.
    """

func stderrLine(_ text: String) {
    Sys.writeStandardError(text + "\n")
}

func usageError(_ message: String) -> Never {
    stderrLine("hyperglassctl: error: \(message)\nSee 'hyperglassctl --help'.")
    exit(2)
}

func share(_ text: String) -> Double {
    guard let value = ReadyShare.parse(text) else { usageError("'\(text)' is not \(ReadyShare.accepted)") }
    return value
}

var arguments = Array(CommandLine.arguments.dropFirst())
var socketPath: String? = getenv("HYPERGLASS_CONTROL_SOCKET").map { String(cString: $0) }
var json = false
var wait = false
var watch = false
var interval = 1.0
var readyShare: Double? = nil
var words: [String] = []
var index = 0
while index < arguments.count {
    let argument = arguments[index]
    index += 1
    switch argument {
    case "-h", "--help", "help": print(usage); exit(0)
    case "--json": json = true
    case "--wait": wait = true
    case "--watch": watch = true
    case "--interval":
        guard index < arguments.count, let seconds = Double(arguments[index]), seconds >= 0.1, seconds <= 3600 else {
            usageError("--interval needs a number of seconds from 0.1 to 3600")
        }
        interval = seconds
        index += 1
    case "--ready-share":
        guard index < arguments.count else { usageError("--ready-share needs a share, e.g. 0.5 or 50%") }
        readyShare = share(arguments[index])
        index += 1
    case "--socket":
        guard index < arguments.count else { usageError("--socket needs a path") }
        socketPath = arguments[index]
        index += 1
    default:
        if argument.hasPrefix("--socket=") { socketPath = String(argument.dropFirst("--socket=".count)) }
        else if argument.hasPrefix("--ready-share=") {
            readyShare = share(String(argument.dropFirst("--ready-share=".count)))
        }
        else if argument.hasPrefix("--") { usageError("unknown option '\(argument)'") }
        else { words.append(argument) }
    }
}

guard let command = words.first else { usageError("missing command (status, health, workers, reload, restart, upgrade, ping, version, metrics, events)") }
if readyShare != nil && command != "health" { usageError("--ready-share goes with 'health'") }
let request: ControlRequest
switch (command, words.count) {
case ("status", 1), ("health", 1): request = .status
case ("metrics", 1): request = .metrics
case ("events", 1): request = .events
case ("ping", 1): request = .ping
case ("version", 1): request = .version
case ("workers", 1): request = .getWorkers
case ("workers", 2) where words[1] == "auto": request = .resumeAutoscaling
case ("workers", 2):
    guard let change = WorkerCountChange(argument: words[1]) else {
        usageError("'\(words[1])' is not a worker count; use N, +N or -N (e.g. 'workers 16', 'workers +1')")
    }
    request = .setWorkers(change, wait: wait)
case ("reload", 1): request = .reload(wait: wait, progress: wait)
case ("restart", 2):
    guard let target = RestartTarget(argument: words[1]) else {
        usageError("'\(words[1])' is not a worker; use a worker id from 'hyperglassctl status' or 'all'")
    }
    request = .restart(target, wait: wait, progress: wait)
case ("restart", 1): usageError("restart needs a worker id or 'all'")
case ("upgrade", 1): request = .upgrade(path: nil, wait: wait)
case ("upgrade", 2):
    guard words[1].hasPrefix("/") else { usageError("upgrade needs an absolute path, not '\(words[1])'") }
    request = .upgrade(path: words[1], wait: wait)
case ("upgrade", _),
     ("status", _), ("health", _), ("ping", _), ("version", _), ("workers", _), ("reload", _), ("restart", _), ("metrics", _), ("events", _):
    usageError("too many arguments for '\(command)'")
default:
    usageError("unknown command '\(command)' (status, health, workers, reload, restart, upgrade, ping, version, metrics, events)")
}
if watch && command != "status" { usageError("--watch goes with 'status'") }
if json && (request != .status || command == "health") { usageError("--json goes with 'status'") }
switch request {
case .setWorkers, .reload, .restart, .upgrade: break
default: if wait { usageError("--wait goes with 'workers N', 'reload', 'restart' and 'upgrade'") }
}

var environment: [String: String] = [:]
for name in ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"] {
    if let value = getenv(name) { environment[name] = String(cString: value) }
}
let path = socketPath ?? ControlSocketPath.default(environment: environment, isRoot: getuid() == 0)
if watch || request == .events { unblockStopSignals() }
if watch { StatusWatch.run(path: path, intervalSeconds: interval, json: json) }
if request == .events {
    do { try EventStream.follow(path: path) } catch {
        stderrLine("hyperglassctl: \(error)")
        exit(error.exitCode)
    }
}
let reply: JSON
var progress = RollProgressView()
do {
    reply = try ControlClient.send(request, to: path, timeoutSeconds: wait ? 900 : 10, onProgress: { progress.show($0) })
    progress.finish()
} catch {
    progress.finish()
    stderrLine("hyperglassctl: \(error)")
    // A probe reads "no supervisor" as unhealthy, not as a usage problem.
    exit(command == "health" ? 1 : error.exitCode)
}
guard reply["ok"]?.bool == true else {
    stderrLine("hyperglassctl: \(reply["error"]?.string ?? "the supervisor refused without a reason")")
    exit(1)
}
if command == "health" {
    let verdict = HealthCheck.judge(reply, readyShare: readyShare ?? ReadyShare.defaultShare)
    print(verdict.reason)
    exit(verdict.healthy ? 0 : 1)
}
switch request {
case .status: print(json ? reply.serialized : StatusTable.render(reply), terminator: json ? "\n" : "")
case .ping: print("pong")
case .metrics: print(reply["text"]?.string ?? "", terminator: "")
case .events: break
case .version: print("hyperglass \(reply["version"]?.string ?? "?") (control protocol \(reply["protocol"]?.int ?? 0))")
case .getWorkers: print(reply["desired"]?.int ?? 0)
case .reload, .restart, .upgrade:
    print(reply["summary"]?.string ?? "started")
    if let note = reply["note"]?.string { stderrLine("hyperglassctl: note: \(note)") }
case .resumeAutoscaling:
    print(reply["autoscaling"]?.string ?? "autoscaling resumed")
case .setWorkers:
    if wait {
        print("\(reply["ready"]?.int ?? 0)/\(reply["desired"]?.int ?? 0) workers ready")
    } else {
        print("workers: \(reply["previous"]?.int ?? 0) → \(reply["desired"]?.int ?? 0)")
    }
}
