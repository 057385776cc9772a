/// One WebSocket connection's protocol state after the handshake: reassembles fragmented messages,
/// answers pings, runs the close handshake, and echoes every message. Pure: bytes in, bytes out.
struct WebSocketSession {
    enum State: Equatable {
        case open
        /// We sent a close frame (drain, 1001) and wait for the client's.
        case closeSent
        /// The close handshake is over or the connection failed: flush the output, then close TCP.
        case closed
    }

    /// The largest message we reassemble; RFC 6455 leaves the limit to the server (§10.4).
    static let defaultMaxMessage = 1 << 20

    let maxMessage: Int
    private(set) var state: State = .open
    /// The close code we sent, for logs and tests.
    private(set) var sentCloseCode: CloseCode?
    private var fragmentOpcode: WebSocketFrame.Opcode?
    private var fragments: [UInt8] = []

    /// Whether a fragmented message has begun and its last fragment is still to come.
    var isReassembling: Bool { fragmentOpcode != nil }

    init(maxMessage: Int = WebSocketSession.defaultMaxMessage) {
        self.maxMessage = maxMessage
    }

    /// Consumes every complete frame in `buffer[start...]` (unmasking in place) and appends the
    /// replies to `out`. Returns the number of bytes consumed; the rest is an incomplete frame.
    mutating func consume(_ buffer: UnsafeMutableBufferPointer<UInt8>, from start: Int, into out: inout [UInt8]) -> Int {
        var p = start
        while state != .closed {
            switch WebSocketFrame.parseHeader(UnsafeBufferPointer(buffer), from: p, maxPayload: maxMessage) {
            case .incomplete:
                return p - start
            case .failure(let code):
                fail(code, &out)
            case .header(let header):
                // Clients must mask every frame (§5.1), so proxies cannot be poisoned by crafted payloads.
                guard let mask = header.mask else {
                    fail(.protocolError, &out)
                    break
                }
                let payloadStart = p + header.headerLength
                guard buffer.count - payloadStart >= header.payloadLength else { return p - start }
                let payload = payloadStart..<(payloadStart + header.payloadLength)
                WebSocketFrame.unmask(buffer, payload, key: mask)
                p = payload.upperBound
                handle(header, UnsafeBufferPointer(rebasing: buffer[payload]), &out)
            }
        }
        // Nothing after the end of the conversation matters.
        return buffer.count - start
    }

    /// Starts the closing handshake with 1001 (going away), as a draining server must.
    mutating func goAway(into out: inout [UInt8]) {
        guard state == .open else { return }
        WebSocketFrame.appendClose(.goingAway, reason: "server draining", to: &out)
        sentCloseCode = .goingAway
        state = .closeSent
    }

    private mutating func handle(_ header: WebSocketFrame.Header, _ payload: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8]) {
        switch header.opcode {
        case .ping:
            if state == .open { WebSocketFrame.append(opcode: .pong, payload: payload, to: &out) }
        case .pong:
            break
        case .close:
            receiveClose(payload, &out)
        case .text, .binary:
            guard state == .open else { return }
            guard fragmentOpcode == nil else { return fail(.protocolError, &out) }
            if header.fin {
                deliver(header.opcode, payload, &out)
            } else {
                fragmentOpcode = header.opcode
                fragments.append(contentsOf: payload)
            }
        case .continuation:
            guard state == .open else { return }
            guard let opcode = fragmentOpcode else { return fail(.protocolError, &out) }
            guard fragments.count + payload.count <= maxMessage else { return fail(.messageTooBig, &out) }
            fragments.append(contentsOf: payload)
            if header.fin {
                let message = fragments
                fragmentOpcode = nil
                // Keep a small buffer for the next message; give a large one back.
                fragments.removeAll(keepingCapacity: fragments.capacity <= 64 * 1024)
                message.withUnsafeBufferPointer { deliver(opcode, $0, &out) }
            }
        }
    }

    /// Echoes a complete message; text must be valid UTF-8 (§8.1).
    private mutating func deliver(_ opcode: WebSocketFrame.Opcode, _ message: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8]) {
        if opcode == .text, String(validating: message, as: UTF8.self) == nil { return fail(.invalidPayload, &out) }
        WebSocketFrame.append(opcode: opcode, payload: message, to: &out)
    }

    private mutating func receiveClose(_ payload: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8]) {
        guard state == .open else {
            state = .closed  // the answer to our own close: the handshake is complete
            return
        }
        if payload.isEmpty {
            WebSocketFrame.append(opcode: .close, payload: [], to: &out)
            state = .closed
            return
        }
        guard payload.count >= 2 else { return fail(.protocolError, &out) }
        let code = CloseCode(rawValue: UInt16(payload[0]) << 8 | UInt16(payload[1]))
        guard code.isValidOnTheWire else { return fail(.protocolError, &out) }
        guard String(validating: UnsafeBufferPointer(rebasing: payload[2...]), as: UTF8.self) != nil else {
            return fail(.invalidPayload, &out)
        }
        // Echo the code, as endpoints typically do (§5.5.1).
        WebSocketFrame.appendClose(code, to: &out)
        sentCloseCode = code
        state = .closed
    }

    /// Silent past the idle timeout and its ping: start the closing handshake with 1001, as a drain does.
    mutating func idleTimedOut(into out: inout [UInt8]) {
        guard state == .open else { return }
        WebSocketFrame.appendClose(.goingAway, reason: "idle timeout", to: &out)
        sentCloseCode = .goingAway
        state = .closeSent
    }

    /// A frame stalled part-way: close with 1008 (our policy bounds how long a frame may take).
    mutating func timedOut(into out: inout [UInt8]) {
        fail(.policyViolation, &out)
    }

    /// Fails the connection (§7.1.7): send a close frame with the code if we have not sent one yet.
    private mutating func fail(_ code: CloseCode, _ out: inout [UInt8]) {
        if state == .open {
            WebSocketFrame.appendClose(code, to: &out)
            sentCloseCode = code
        }
        state = .closed
    }
}
