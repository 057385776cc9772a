import CHyperglass
import Glibc
import SystemCalls
import WorkerKit

// Before anything else: SIGTERM/SIGINT blocked and turned into an fd, so a signal that arrives
// during start-up waits for the loop instead of killing us mid-way.
let drainSignal = DrainSignal.install()
hg_ignore_sigpipe()

let options: Options
do {
    options = try Options.parse(Array(CommandLine.arguments.dropFirst()), environment: Environment.get)
} catch {
    let text = "Error: \(error.message)\nUsage: \(Options.usage)\nSee 'hyperglass-worker --help'.\n"
    Sys.writeStandardError(text)
    exit(2)
}
if options.help {
    print(Options.helpText)
    exit(0)
}

var listeners: [Int32] = []
var ownedPaths: [String] = []
let inherited = InheritedSockets.take()
for socket in inherited {
    // Only stream sockets make sense for HTTP; a datagram fd would make accept() fail forever.
    guard hg_socket_type(socket.fd) == Int32(SOCK_STREAM.rawValue) else {
        log("ignoring inherited fd \(socket.fd) (\(socket.name)): not a stream socket")
        continue
    }
    listeners.append(socket.fd)
}
if inherited.isEmpty {
    guard !options.binds.isEmpty else {
        Sys.writeStandardError("Error: no listening socket: LISTEN_FDS is not set and no --bind was given\nUsage: \(Options.usage)\nSee 'hyperglass-worker --help'.\n")
        exit(2)
    }
    for address in options.binds {
        do {
            let bound = try Bind.listen(address)
            listeners += bound.fds
            if let path = bound.path { ownedPaths.append(path) }
        } catch {
            log("cannot listen: \(error.message)")
            exit(1)
        }
    }
}
guard !listeners.isEmpty else {
    log("no usable listening socket among the \(inherited.count) inherited; check the supervisor's bind setting")
    exit(1)
}

var limits = Limits()
limits.idleTimeout = options.idleTimeout
limits.requestTimeout = options.requestTimeout
limits.maxConnections = options.maxConnections
limits.webSocketIdleTimeout = options.webSocketIdleTimeout
let names = listeners.map { fd -> String in
    var buffer = [CChar](repeating: 0, count: 256)
    guard hg_sockname(fd, &buffer, Int32(buffer.count)) == 0 else { return "fd \(fd)" }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
let watchdog = Watchdog.interval()
log("serving on \(names.joined(separator: ", "))\(inherited.isEmpty ? "" : " (inherited)")"
    + (watchdog.map { ", watchdog every \($0 / 1_000_000) ms" } ?? "")
    + (limits.maxConnections > 0 ? ", at most \(limits.maxConnections) connections" : "")
    + (limits.webSocketIdleTimeout > 0 ? ", idle WebSockets pinged after \(limits.webSocketIdleTimeout / 1_000_000) ms" : ""))

let server = Server(
    configuration: .init(listeners: listeners, drainTimeout: options.drainTimeout, limits: limits, ownedPaths: ownedPaths),
    router: Router(workerID: WorkerIdentity.current(), pid: getpid()),
    notifier: Notifier(),
    drainSignal: drainSignal,
    watchdogInterval: watchdog)
server.run()
