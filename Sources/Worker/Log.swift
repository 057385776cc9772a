import Glibc
import WorkerKit

/// "worker <id>[pid]: ", so lines from many workers interleaved in one journal stay attributable.
let logPrefix = "worker \(WorkerIdentity.current())[\(getpid())]: "

/// Writes one line to stderr with a single write(), so concurrent workers do not interleave mid-line.
func log(_ message: String) {
    writeStandardError(logPrefix + message + "\n")
}

/// Writes text to fd 2 in one call (Glibc's `stderr` is a global Swift 6 cannot prove safe).
func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}
