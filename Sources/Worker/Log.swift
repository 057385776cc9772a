import Glibc
import SystemCalls
import WorkerKit

/// "worker <id>[pid]: ", so lines from many workers interleaved in one journal stay attributable.
let logPrefix = "worker \(WorkerIdentity.current())[\(getpid())]: "

/// Writes one line to stderr with a single write(), so concurrent workers do not interleave mid-line.
func log(_ message: String) {
    Sys.writeStandardError(logPrefix + message + "\n")
}
