import CHyperglass
import Glibc
import SupervisorCore

// signalfd only sees blocked signals, and every thread must block them: do it before anything else.
hg_block_signals(EventLoop.handledSignals, Int32(EventLoop.handledSignals.count))
precondition(EventLoop.earlyBlockedSignalsAgree, "CSupervisorSignals' list must be Signal.handled")
hg_ignore_sigpipe()

let version = "0.1.0"

func fail(_ message: String, code: Int32) -> Never {
    Sys.writeStandardError("hyperglass: \(message)\n")
    exit(code)
}

let invocation: Invocation
do {
    invocation = try Arguments.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    fail("error: \(error)\n\(Arguments.usage)\nSee 'hyperglass --help'.", code: 2)
}

switch invocation.subcommand {
case .help:
    print(Arguments.help, terminator: "")
case .version:
    print("hyperglass \(version)")
case .checkConfig:
    do {
        let loaded = try Configuration.load(invocation, environment: Sys.environmentDictionary())
        let cpus = CgroupLimits.cpuBudget()
        let workers = loaded.settings.workers.resolve(onlineCPUs: cpus.cpus, debug: loaded.settings.debug)
        let unenforced = loaded.settings.memoryMax == nil ? nil : CgroupLimits.memoryMaxUnenforceable(nil)
        print(Configuration.describe(loaded, resolvedWorkers: workers, why: cpus.explain(workers: workers, debug: loaded.settings.debug),
                                     more: unenforced.map { ["memory_max": "cannot be enforced here: \($0)"] } ?? [:]),
              terminator: "")
        UnitCheck.warnIfStopTimeoutTooShort(graceful: loaded.settings.gracefulTimeout)
    } catch {
        fail("\(error)", code: 78)
    }
case .upgradeCheck:
    exit(UpgradeCheck.run(invocation))
case .start:
    exit(Start.run(invocation))
}
