import ControlProtocol
import Glibc

/// Shows a roll advancing while `reload --wait` or `restart --wait` waits, as `kubectl rollout status`
/// does: on a terminal one line rewritten in place, into a pipe or the journal one plain line per step.
struct RollProgressView {
    /// Whether standard output is a terminal (a live line) or not (a line per step).
    let live: Bool
    private var showing = false

    init(live: Bool = isatty(1) == 1) { self.live = live }

    /// Shows one progress line from the supervisor: "rolling: 9/16 new, 2 starting, 2 settling, 0 failed".
    mutating func show(_ line: JSON) {
        guard let summary = line["summary"]?.string else { return }
        // Written straight to the fd: stdio would hold a pipe's lines until the end.
        write(live ? "\r\u{1B}[K" + summary : summary + "\n")
        showing = live
    }

    /// Clears the live line, so the outcome prints on a clean one.
    mutating func finish() {
        if showing { write("\r\u{1B}[K") }
        showing = false
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
