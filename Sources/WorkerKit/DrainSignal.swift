import CHyperglass
import Glibc
import SystemCalls

/// SIGTERM and SIGINT as a readable fd, so the event loop learns of a drain request like any other
/// event, with no handler running at an arbitrary point of the loop.
public struct DrainSignal: Sendable {
    /// The signals that ask a worker to drain.
    public static let signals: [Int32] = [SIGTERM, SIGINT]

    /// The signalfd to watch for readability.
    public let fd: Int32

    /// Blocks the drain signals and opens the signalfd. Call it at the very top of `main`, before any
    /// thread exists: signalfd only sees signals blocked in every thread.
    public static func install() -> DrainSignal {
        let signals = DrainSignal.signals
        let result = signals.withUnsafeBufferPointer { buffer -> Result<Int32, Errno> in
            precondition(hg_block_signals(buffer.baseAddress, Int32(buffer.count)) == 0, "blocking SIGTERM/SIGINT cannot fail")
            return Sys.retryingInterrupts("signalfd") { hg_signalfd(buffer.baseAddress, Int32(buffer.count)) }
        }
        switch result {
        case .success(let fd): return DrainSignal(fd: fd)
        case .failure(let error): preconditionFailure("signalfd failed: \(error)")
        }
    }

    /// The next pending drain signal, or nil when none is pending.
    public func next() -> Int32? {
        let signal = hg_signalfd_read(fd)
        return signal > 0 ? signal : nil
    }
}
