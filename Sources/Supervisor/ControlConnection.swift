import SupervisorCore

/// One control connection's buffers and clocks. Every resource it can hold is bounded: input by
/// `ControlServer.maxLine` plus one read, output by `maxPendingOutput` (reading stops above it), and
/// time by the deadlines below, each measured from when its wait began, never reset by a dripped byte.
final class ControlConnection {
    let fd: Int32
    let role: ControlServer.Role
    let uid: UInt32
    /// Bytes received; `consumed` of them are already taken as lines.
    private(set) var input: [UInt8] = []
    private var consumed = 0
    /// Complete lines waiting in `input`, and where the unfinished one starts: counted as bytes arrive,
    /// so no check rescans a 64 KiB buffer.
    private var completeLines = 0
    private var tailStart = 0
    /// Reply bytes; `sent` of them are already written.
    private(set) var output: [UInt8] = []
    private var sent = 0
    /// Reply then close (an error was the last word).
    var closeAfterFlush = false
    /// The peer shut down its sending side: answer the complete lines it sent, then close.
    var readClosed = false
    /// When the first byte of the unfinished line arrived.
    private(set) var lineStartedAt: Instant?
    /// When the last request arrived (or the connection, before any): the order in which idle clients give way.
    private(set) var lastRequestAt: Instant
    /// Since when reply bytes wait for a peer that does not read.
    private(set) var stalledSince: Instant?
    /// A `--wait` request's reply is due by then.
    var awaitUntil: Instant?
    /// The epoll interest last registered, to skip redundant epoll_ctl calls.
    var registered: UInt32

    init(fd: Int32, role: ControlServer.Role, uid: UInt32, at now: Instant, registered: UInt32) {
        self.fd = fd
        self.role = role
        self.uid = uid
        self.lastRequestAt = now
        self.registered = registered
    }

    var pendingOutput: Int { output.count - sent }
    /// What arrived and was not taken as a request yet (an upgrade hands it to the new image).
    var unconsumedInput: [UInt8] { Array(input[consumed...]) }
    var hasCompleteLine: Bool { completeLines > 0 }
    /// Length of the line still being received (after the last newline).
    var unfinishedLength: Int { input.count - tailStart }

    /// Whether to read more now: not while complete lines or too many reply bytes are waiting, so a
    /// pipelining client is served at the pace it reads its replies.
    var wantsRead: Bool { !closeAfterFlush && !readClosed && !hasCompleteLine && pendingOutput < ControlServer.maxPendingOutput }

    func received(_ bytes: UnsafeRawBufferPointer, at now: Instant) {
        let hadUnfinished = input.count > tailStart
        let base = input.count
        input.append(contentsOf: bytes)
        var newlines = 0
        var last: Int? = nil
        for (index, byte) in bytes.enumerated() where byte == 0x0A {
            newlines += 1
            last = index
        }
        completeLines += newlines
        if let last { tailStart = base + last + 1 }
        if tailStart == input.count {
            lineStartedAt = nil
        } else if !hadUnfinished || last != nil {
            // A new line began in these bytes; a line already under way keeps its first byte's time.
            lineStartedAt = now
        }
    }

    /// The next complete request line, if any.
    func takeLine(at now: Instant) -> String? {
        guard completeLines > 0, let newline = input[consumed...].firstIndex(of: 0x0A) else { return nil }
        let line = String(decoding: input[consumed..<newline], as: UTF8.self)
        completeLines -= 1
        consumed = newline + 1
        if consumed == input.count {
            input.removeAll(keepingCapacity: true)
            consumed = 0
            tailStart = 0
        } else if consumed > 32768 {
            input.removeFirst(consumed)
            tailStart -= consumed
            consumed = 0
        }
        lastRequestAt = now
        return line
    }

    func queue(_ bytes: [UInt8], at now: Instant) {
        if pendingOutput == 0 { stalledSince = now }
        output += bytes
    }

    /// Marks `n` reply bytes as written; progress restarts the write deadline.
    func wrote(_ n: Int, at now: Instant) {
        sent += n
        stalledSince = now
        if sent == output.count { output.removeAll(keepingCapacity: false); sent = 0; stalledSince = nil }
        else if sent > 65536 { output.removeFirst(sent); sent = 0 }
    }

    func unsent<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        output.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[sent...])) }
    }

    /// Whether nothing is left to do for a client that will send nothing more.
    var finished: Bool {
        (closeAfterFlush || readClosed) && pendingOutput == 0 && awaitUntil == nil && (closeAfterFlush || !hasCompleteLine)
    }

    /// The earliest moment something must happen to this connection.
    var deadline: Instant {
        var candidates: [Instant] = []
        if let stalledSince { candidates.append(stalledSince + ControlServer.writeTimeout) }
        if let awaitUntil { candidates.append(awaitUntil) }
        if !closeAfterFlush, !readClosed, let lineStartedAt { candidates.append(lineStartedAt + ControlServer.lineTimeout) }
        if candidates.isEmpty { candidates.append(lastRequestAt + ControlServer.idleTimeout) }
        return candidates.min()!
    }

    enum Expiry { case writeStalled, waitTimedOut, lineTimedOut, idle }

    /// Why the deadline passed.
    func expiry(at now: Instant) -> Expiry? {
        if let stalledSince, stalledSince + ControlServer.writeTimeout <= now { return .writeStalled }
        if let awaitUntil, awaitUntil <= now { return .waitTimedOut }
        if !closeAfterFlush, !readClosed, let lineStartedAt, lineStartedAt + ControlServer.lineTimeout <= now { return .lineTimedOut }
        if stalledSince == nil, awaitUntil == nil, lineStartedAt == nil || closeAfterFlush || readClosed,
           lastRequestAt + ControlServer.idleTimeout <= now { return .idle }
        return nil
    }
}
