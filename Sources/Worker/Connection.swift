/// One client connection: its buffers, its protocol state and its deadline. The protocol logic is
/// here; the syscalls and the bookkeeping of many connections are the server's.
final class Connection {
    enum Mode: Equatable {
        case http
        /// A `/sleep` response is due at `modeDeadline`; later pipelined requests wait behind it.
        case sleeping
        case webSocket
        /// We sent our FIN and discard input until the client's, or `modeDeadline`.
        case lingering
    }

    let fd: Int32
    let serial: UInt32
    var mode = Mode.http
    var input: [UInt8] = []
    var output: [UInt8] = []
    /// Bytes of `output` already written.
    var sent = 0
    var session = WebSocketSession()
    /// The last response said `Connection: close`, or the session ended: close once flushed.
    var closeAfterFlush = false
    /// The client sent its FIN.
    var peerClosed = false
    /// Accepted only to be told 503 (the worker is at `max_connections`); not counted against the cap.
    var refused = false
    /// An idle WebSocket was pinged and has not been heard from since.
    var pinged = false
    /// When bytes last moved either way; the base of the idle and write timeouts.
    var lastActivity: UInt64
    /// When the first byte of a still incomplete request head and body, or WebSocket frame, arrived,
    /// or 0. Later bytes never move it: a client dripping one byte at a time still meets the deadline.
    var requestStartedAt: UInt64 = 0
    /// When pending output last made progress (or became pending), or 0: the base of the write
    /// timeout. Reads never move it, so a client that keeps sending but never reads cannot keep
    /// its unread responses buffered forever.
    var outputWaitingSince: UInt64 = 0
    /// The sleep's end, the linger's end, the close handshake's end, or an open WebSocket's idle deadline.
    var modeDeadline: UInt64 = 0
    var sleepMilliseconds = 0
    var sleepPersistence = HTTPResponse.Persistence.keepAlive
    var sleepHeadOnly = false
    /// Bytes of the current request's body still to come and be thrown away. No route reads a
    /// body, so a body is discarded as it streams in instead of buffered whole: many clients
    /// sending 1 MiB bodies slowly cannot hold 1 MiB of our memory each.
    var bodyToSkip = 0
    /// The epoll events currently registered.
    var interest: UInt32
    /// The deadline of this connection's entry in the timer queue, or 0 when it has none.
    var queuedDeadline: UInt64 = 0

    init(fd: Int32, serial: UInt32, now: UInt64, interest: UInt32) {
        self.fd = fd
        self.serial = serial
        self.lastActivity = now
        self.interest = interest
    }

    var pendingOutput: Int { output.count - sent }

    /// Parses and answers whatever complete requests or frames the input holds.
    func process(router: Router, limits: Limits, draining: Bool, now: UInt64) {
        if mode == .http { processHTTP(router: router, limits: limits, draining: draining, now: now) }
        if mode == .webSocket { processWebSocket(now: now) }
    }

    private func processHTTP(router: Router, limits: Limits, draining: Bool, now: UInt64) {
        var consumed = 0
        while mode == .http, !closeAfterFlush, consumed < input.count, pendingOutput <= limits.maxPendingOutput {
            if bodyToSkip > 0 {
                let skipped = min(bodyToSkip, input.count - consumed)
                consumed += skipped
                bodyToSkip -= skipped
                if bodyToSkip == 0 { requestStartedAt = 0 }  // the request is complete
                continue
            }
            let parsed = input.withUnsafeBufferPointer { HTTPParser.parse($0, from: consumed, maxHeadLength: limits.maxHeadLength) }
            guard case .complete(let head) = parsed else {
                if case .failure(let status) = parsed {
                    HTTPResponse.appendError(status, to: &output)
                    closeAfterFlush = true
                } else if requestStartedAt == 0 {
                    requestStartedAt = now
                }
                break
            }
            if head.contentLength > limits.maxBodyLength {
                HTTPResponse.appendError(.contentTooLarge, to: &output)
                closeAfterFlush = true
                break
            }
            let total = head.headLength + head.contentLength
            // An upgrade waits for its whole body (bytes after it are WebSocket frames); any other
            // request is answered once its head is here, and its body discarded as it arrives.
            let waitForBody = head.upgradeWebSocket ? total : head.headLength
            guard input.count - consumed >= waitForBody else {
                if requestStartedAt == 0 { requestStartedAt = now }
                break
            }
            let outcome = input.withUnsafeBufferPointer { router.route(head, $0, draining: draining) }
            let keepAlive = head.keepAlive && !draining
            let persistence: HTTPResponse.Persistence = keepAlive ? (head.minorVersion == 1 ? .keepAlive : .keepAliveHTTP10) : .close
            let headOnly = head.method == .head
            switch outcome {
            case .respond(let status, let body, let contentType):
                HTTPResponse.append(status: status, contentType: contentType, body: body, persistence: persistence,
                                    headOnly: headOnly, to: &output)
            case .reject(let status):
                let extra: StaticString = switch status {
                case .methodNotAllowed: "Allow: GET, HEAD\r\n"
                case .upgradeRequired: "Sec-WebSocket-Version: 13\r\n"
                default: ""
                }
                HTTPResponse.appendError(status, persistence: persistence, extraHeaders: extra, to: &output)
            case .sleep(let milliseconds):
                mode = .sleeping
                modeDeadline = now + UInt64(milliseconds) * 1_000_000
                sleepMilliseconds = milliseconds
                sleepPersistence = persistence
                sleepHeadOnly = headOnly
            case .upgrade(let accept):
                HTTPResponse.appendSwitchingProtocols(accept: accept, to: &output)
                mode = .webSocket
                session = WebSocketSession(maxMessage: limits.maxWebSocketMessage)
            }
            let here = min(total, input.count - consumed)
            consumed += here
            bodyToSkip = total - here
            requestStartedAt = bodyToSkip > 0 ? (requestStartedAt != 0 ? requestStartedAt : now) : 0
            if !keepAlive, mode != .webSocket {
                if mode == .http { closeAfterFlush = true }
                consumed = input.count  // nothing after a closing request is answered
            }
        }
        if closeAfterFlush { consumed = input.count }
        discardInput(consumed)
    }

    private func processWebSocket(now: UInt64) {
        guard !input.isEmpty else { return }
        let consumed = input.withUnsafeMutableBufferPointer { session.consume($0, from: 0, into: &output) }
        discardInput(consumed)
        if session.state == .closed { closeAfterFlush = true }
        // A frame or a fragmented message in progress has a deadline from its first byte, reset
        // only when it is whole. Without one, a frame stopped one byte short (or a message whose
        // last fragment never comes) held its buffer forever.
        if input.isEmpty && !session.isReassembling {
            requestStartedAt = 0
        } else if requestStartedAt == 0 || (consumed > 0 && !session.isReassembling) {
            requestStartedAt = now  // what is left started with the bytes just read
        }
    }

    /// A WebSocket frame (or fragmented message) did not arrive whole within the request timeout: fail the session with
    /// 1008 and drop the partial frame.
    func frameTimedOut() {
        precondition(mode == .webSocket, "frameTimedOut on a connection that is not a WebSocket")
        session.timedOut(into: &output)
        closeAfterFlush = true
        input = []
        requestStartedAt = 0
    }

    /// Answers a `/sleep` whose time has come, then carries on with any pipelined requests.
    func finishSleep(router: Router, limits: Limits, draining: Bool, now: UInt64) {
        precondition(mode == .sleeping, "finishSleep on a connection that is not sleeping")
        let persistence = draining ? .close : sleepPersistence
        HTTPResponse.append(status: .ok, contentType: "text/plain; charset=utf-8",
                            body: Array("slept \(sleepMilliseconds) ms\n".utf8), persistence: persistence,
                            headOnly: sleepHeadOnly, to: &output)
        mode = .http
        if case .close = persistence {
            closeAfterFlush = true
            input.removeAll()
        }
        process(router: router, limits: limits, draining: draining, now: now)
    }

    /// The client was heard from: an open WebSocket's idle clock starts again (nothing when it is off).
    func heard(now: UInt64, limits: Limits) {
        guard mode == .webSocket, session.state == .open, limits.webSocketIdleTimeout != 0 else { return }
        pinged = false
        modeDeadline = now + limits.webSocketIdleTimeout
    }

    /// An open WebSocket was silent for the idle timeout: ping it the first time, close it with 1001
    /// the second (it did not answer the ping either).
    func idleExpired(now: UInt64, limits: Limits) {
        precondition(mode == .webSocket && session.state == .open, "idleExpired on a connection that is not an open WebSocket")
        if pinged {
            session.idleTimedOut(into: &output)
            modeDeadline = now + limits.closeHandshakeTimeout
        } else {
            WebSocketFrame.append(opcode: .ping, payload: [], to: &output)
            pinged = true
            modeDeadline = now + limits.webSocketIdleTimeout
        }
    }

    /// Begins the WebSocket closing handshake with 1001; returns whether this connection is one.
    func goAway(now: UInt64, limits: Limits) -> Bool {
        guard mode == .webSocket, session.state == .open else { return false }
        session.goAway(into: &output)
        modeDeadline = now + limits.closeHandshakeTimeout
        return true
    }

    /// Whether nothing is in progress: no partial request, no pending response.
    var isIdleHTTP: Bool { mode == .http && input.isEmpty && bodyToSkip == 0 && pendingOutput == 0 && !closeAfterFlush }

    /// The moment this connection next needs attention, or 0 for never (an open WebSocket).
    func deadline(_ limits: Limits) -> UInt64 {
        switch mode {
        case .sleeping, .lingering: return modeDeadline
        case .http, .webSocket: break
        }
        if pendingOutput > 0 { return (outputWaitingSince != 0 ? outputWaitingSince : lastActivity) + limits.writeTimeout }
        if mode == .webSocket {
            if session.state == .closeSent { return modeDeadline }
            if requestStartedAt != 0 { return requestStartedAt + limits.requestTimeout }
            return limits.webSocketIdleTimeout != 0 && session.state == .open ? modeDeadline : 0
        }
        return requestStartedAt != 0 ? requestStartedAt + limits.requestTimeout : lastActivity + limits.idleTimeout
    }

    private func discardInput(_ count: Int) {
        if count >= input.count {
            // Give back a buffer a large message grew; keep a small one for the next request.
            input.removeAll(keepingCapacity: input.capacity <= 64 * 1024)
        } else if count > 0 {
            input.removeFirst(count)
        }
    }
}

extension Connection {
    /// The HTTP connection that has waited longest for a (complete) request with nothing owed to it,
    /// or nil: the one to close when we run out of fds, so idle or slow-loris connections cannot
    /// lock new clients out. Scans the table: it runs only when accept() fails with EMFILE.
    static func longestWaiting(in connections: [Connection?]) -> Connection? {
        var oldest: Connection?
        var oldestSince = UInt64.max
        for case let connection? in connections where connection.mode == .http && connection.pendingOutput == 0 && !connection.closeAfterFlush {
            let since = connection.requestStartedAt != 0 ? connection.requestStartedAt : connection.lastActivity
            if since < oldestSince { oldest = connection; oldestSince = since }
        }
        return oldest
    }
}
