import CHyperglass
import Glibc
import SupervisorCore
import SystemCalls

/// `prestart`: one command run to completion before the first workers start, such as hyperglass's
/// front-end build or a database migration. It runs before the listening sockets are bound, so a
/// long one leaves clients a refused connection rather than a socket nobody serves for minutes.
/// Under systemd, STATUS= says what runs and EXTEND_TIMEOUT_USEC= keeps pushing out the start timeout
/// while it does (a build can outlast TimeoutStartSec=); its output goes where ours goes, the journal.
/// SIGTERM, SIGINT or SIGQUIT stop it the way a drain stops workers: SIGTERM to its process group,
/// SIGKILL after graceful_timeout or at a second signal; then the start ends with status 0, as a stop does.
enum Prestart {
    enum Outcome: Equatable {
        case succeeded
        /// Why, in words for the journal and STATUS=: "exited with status 3", "was killed by SIGSEGV".
        case failed(String)
        /// SIGTERM, SIGINT or SIGQUIT arrived; the command has been ended and reaped.
        case stopped
    }

    /// While the command runs, systemd's start timeout is pushed this far ahead, every `extendEvery`.
    static let extendBy: Duration = .seconds(30)
    static let extendEvery: Duration = .seconds(10)

    /// Runs `command` (argv[0] absolute) with `environment`, waiting for it, for a stop signal and for
    /// the next extension. The signals are blocked already (CSupervisorSignals); this reads them from its
    /// own signalfd, which the event loop later replaces, so none is lost and none leaks into the pool.
    static func run(_ command: [String], environment: [String], gracefulTimeout: Duration,
                    notifier: SystemdNotifier, log: Log) throws(SystemError) -> Outcome {
        // Every handled signal, so that none waits pending to be acted on once the pool has started.
        let signals = try Sys.check("signalfd") { hg_signalfd(EventLoop.handledSignals, Int32(EventLoop.handledSignals.count)) }
        defer { Sys.close(signals) }
        let epoll = try Sys.check("epoll_create1") { hg_epoll_create() }
        defer { Sys.close(epoll) }
        try Epoll.add(epoll, signals, HG_EPOLLIN, 1)

        let shown = command.map(ValueParser.shellQuoted).joined(separator: " ")
        let started = Sys.now
        var error: Int32 = 0
        // The exec result comes back on `report` (end of file: exec succeeded; 4 bytes: its errno).
        var report: Int32 = -1
        let pid = withCStringArray(command) { argv in
            withCStringArray(environment) { envp in hg_spawn_start(argv[0], argv, envp, -1, nil, 0, &report, &error) }
        }
        guard pid > 0 else { throw SystemError(operation: "start prestart \(command[0])", errno: error) }
        defer { if report >= 0 { Sys.close(report) } }
        try Epoll.add(epoll, report, HG_EPOLLIN, 2)
        var execError: Int32 = 0
        log(.notice, "prestart: running \(shown) (pid \(pid)); the workers start when it has succeeded")
        notifier.send([.status("prestart: running \(shown)"), .extendTimeout(extendBy)])

        var nextExtension = started + extendEvery
        var killAt: Instant? = nil
        var stopping = false
        while true {
            let now = Sys.now
            if let deadline = killAt, now >= deadline {
                log(.warning, "prestart: still running \(gracefulTimeout.spoken) after SIGTERM; killing it")
                Sys.signalGroup(pid, SIGKILL)
                killAt = nil
            }
            if now >= nextExtension {
                let extend = stopping ? gracefulTimeout + .seconds(5) : extendBy
                let state = stopping ? "stopping: prestart" : "prestart: running"
                notifier.send([.status("\(state) \(shown) (\((now - started).spoken))"), .extendTimeout(extend)])
                nextExtension = now + extendEvery
            }
            let wake = min(nextExtension, killAt ?? nextExtension)
            var events = [hg_event()]
            _ = Epoll.wait(epoll, &events, timeoutMilliseconds: Int32(clamping: max(0, (wake - Sys.now).nanoseconds / 1_000_000) + 1))
            if report >= 0 {
                let result = hg_spawn_result(report)
                if result >= 0 {
                    execError = result
                    Sys.close(report)  // also leaves the epoll set
                    report = -1
                }
            }
            while true {
                let signal = hg_signalfd_read(signals)
                guard signal > 0 else { break }
                switch Signal(rawValue: signal)?.meaning {
                case .reap:
                    var status: Int32 = 0
                    if hg_reap(pid, &status) == pid {
                        if stopping {
                            log(.notice, "prestart: \(shown) stopped; exiting")
                            return .stopped
                        }
                        if execError > 0 {
                            return .failed("could not be started: \(String(cString: strerror(execError)))")
                        }
                        if hg_wifexited(status) != 0 && hg_wexitstatus(status) == 0 {
                            log(.notice, "prestart: \(shown) succeeded in \((Sys.now - started).spoken)")
                            return .succeeded
                        }
                        let reason = hg_wifexited(status) != 0 ? "exited with status \(hg_wexitstatus(status))"
                            : "was killed by \(SignalName.of(hg_wtermsig(status)))"
                        return .failed(reason)
                    }
                case .stop:
                    if stopping {
                        log(.notice, "prestart: \(SignalName.of(signal)) again: killing \(shown) now")
                        Sys.signalGroup(pid, SIGKILL)
                        killAt = nil
                    } else {
                        stopping = true
                        log(.notice, "prestart: \(SignalName.of(signal)) received: stopping \(shown) (graceful timeout \(gracefulTimeout.spoken))")
                        notifier.send([.stopping, .status("stopping: prestart \(shown)"), .extendTimeout(gracefulTimeout + .seconds(5))])
                        Sys.signalGroup(pid, SIGTERM)
                        killAt = Sys.now + gracefulTimeout
                    }
                case .reload, .scale, .upgrade:
                    // Kept pending it would act after the start: a SIGTTIN sent minutes earlier adding a worker.
                    log(.notice, "prestart: \(SignalName.of(signal)) ignored: the workers have not started yet; send it again once they have")
                case .ignored(let reason):
                    log(.notice, "prestart: \(SignalName.of(signal)) ignored: \(reason)")
                case nil:
                    preconditionFailure("signalfd returned signal \(signal), which is not in the table")
                }
            }
        }
    }
}

/// A NULL-terminated char* array valid for the duration of `body`.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { buffer in body(UnsafeMutablePointer(mutating: buffer.baseAddress!)) }
}
