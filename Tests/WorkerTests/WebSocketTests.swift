import Testing
@testable import Worker

/// A client frame as a browser sends it: masked.
private func clientFrame(_ opcode: WebSocketFrame.Opcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    var out: [UInt8] = []
    WebSocketFrame.append(opcode: opcode, fin: fin, payload: payload, mask: (0x37, 0xFA, 0x21, 0x3D), to: &out)
    return out
}

/// Server frames decoded from the session's output: (opcode, payload).
private func serverFrames(_ bytes: [UInt8]) -> [(WebSocketFrame.Opcode, [UInt8])] {
    var frames: [(WebSocketFrame.Opcode, [UInt8])] = []
    var p = 0
    bytes.withUnsafeBufferPointer { buffer in
        while case .header(let header) = WebSocketFrame.parseHeader(buffer, from: p, maxPayload: Int.max) {
            #expect(header.mask == nil, "servers must not mask")
            let start = p + header.headerLength
            frames.append((header.opcode, Array(buffer[start..<(start + header.payloadLength)])))
            p = start + header.payloadLength
        }
    }
    return frames
}

/// Feeds bytes to a session (optionally split into pieces) and returns its output and final state.
private func run(_ input: [UInt8], chunk: Int = Int.max, maxMessage: Int = 1 << 20) -> (out: [UInt8], session: WebSocketSession) {
    var session = WebSocketSession(maxMessage: maxMessage)
    var buffered: [UInt8] = []
    var out: [UInt8] = []
    var index = 0
    while index < input.count {
        let end = min(input.count, index + chunk)
        buffered += input[index..<end]
        index = end
        let consumed = buffered.withUnsafeMutableBufferPointer { session.consume($0, from: 0, into: &out) }
        buffered.removeFirst(consumed)
    }
    return (out, session)
}

private func closeCode(_ frame: (WebSocketFrame.Opcode, [UInt8])?) -> UInt16? {
    guard let frame, frame.0 == .close, frame.1.count >= 2 else { return nil }
    return UInt16(frame.1[0]) << 8 | UInt16(frame.1[1])
}

@Suite("WebSocket frames and session", .timeLimit(.minutes(1)))
struct WebSocketTests {
    @Test("frame headers round-trip for 7-, 16- and 64-bit lengths")
    func lengths() throws {
        for size in [0, 125, 126, 65535, 65536, 70000] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
            var frame = clientFrame(.binary, payload)
            let parsed = frame.withUnsafeBufferPointer { WebSocketFrame.parseHeader($0, from: 0, maxPayload: 1 << 20) }
            guard case .header(let header) = parsed else { Issue.record("size \(size): \(parsed)"); continue }
            #expect(header.payloadLength == size && header.fin && header.opcode == .binary)
            let mask = try #require(header.mask)
            frame.withUnsafeMutableBufferPointer { WebSocketFrame.unmask($0, header.headerLength..<$0.count, key: mask) }
            #expect(Array(frame[header.headerLength...]) == payload)
        }
    }

    @Test("a masked text message is echoed unmasked, even when it arrives a byte at a time")
    func echo() {
        let input = clientFrame(.text, Array("héllo".utf8)) + clientFrame(.binary, [0, 1, 2])
        for chunk in [1, 3, Int.max] {
            let (out, session) = run(input, chunk: chunk)
            let frames = serverFrames(out)
            #expect(frames.count == 2)
            #expect(frames.first?.0 == .text && frames.first?.1 == Array("héllo".utf8))
            #expect(frames.last?.0 == .binary && frames.last?.1 == [0, 1, 2])
            #expect(session.state == .open)
        }
    }

    @Test("fragments are reassembled, with pings answered in between")
    func fragmented() {
        let input = clientFrame(.text, Array("frag".utf8), fin: false) + clientFrame(.ping, [9, 9])
            + clientFrame(.continuation, Array("men".utf8), fin: false) + clientFrame(.continuation, Array("ted".utf8))
        let frames = serverFrames(run(input, chunk: 5).out)
        #expect(frames.count == 2)
        #expect(frames.first?.0 == .pong && frames.first?.1 == [9, 9])
        #expect(frames.last?.0 == .text && frames.last?.1 == Array("fragmented".utf8))
    }

    @Test("an unmasked client frame fails the connection with 1002")
    func unmasked() {
        var out: [UInt8] = []
        WebSocketFrame.append(opcode: .text, payload: Array("hi".utf8), to: &out)
        let (reply, session) = run(out)
        #expect(closeCode(serverFrames(reply).last) == 1002)
        #expect(session.state == .closed)
    }

    @Test("protocol violations close with 1002", arguments: [
        [0x80 | 0x40 | 0x1, 0x80, 1, 2, 3, 4],  // RSV1 without an extension
        [0x80 | 0x3, 0x80, 1, 2, 3, 4],  // reserved opcode
        [0x80 | 0x0, 0x80, 1, 2, 3, 4],  // continuation with nothing to continue
        [0x09, 0x80, 1, 2, 3, 4],  // fragmented ping
        [0x89, 0x80 | 126, 0, 126, 1, 2, 3, 4],  // ping over 125 bytes
        [0x88, 0x81, 1, 2, 3, 4, 0],  // close with a 1-byte payload
    ] as [[UInt8]])
    func protocolErrors(_ input: [UInt8]) {
        let (out, session) = run(input + [UInt8](repeating: 0, count: 130))
        #expect(closeCode(serverFrames(out).last) == 1002)
        #expect(session.state == .closed)
    }

    @Test("a new message inside a fragmented one is 1002")
    func interleavedMessages() {
        let input = clientFrame(.text, Array("a".utf8), fin: false) + clientFrame(.text, Array("b".utf8))
        #expect(closeCode(serverFrames(run(input).out).last) == 1002)
    }

    @Test("oversized frames and messages close with 1009, before the payload arrives")
    func oversized() {
        // Header only: 64-bit length of 2 MiB, no payload sent.
        let header: [UInt8] = [0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4]
        #expect(closeCode(serverFrames(run(header).out).last) == 1009)
        let fragments = clientFrame(.binary, [UInt8](repeating: 1, count: 600), fin: false)
            + clientFrame(.continuation, [UInt8](repeating: 2, count: 600))
        #expect(closeCode(serverFrames(run(fragments, maxMessage: 1000).out).last) == 1009)
    }

    @Test("invalid UTF-8 in a text message closes with 1007")
    func invalidText() {
        let input = clientFrame(.text, [0xC3], fin: false) + clientFrame(.continuation, [0x28])
        #expect(closeCode(serverFrames(run(input).out).last) == 1007)
        #expect(closeCode(serverFrames(run(clientFrame(.text, [0xED, 0xA0, 0x80])).out).last) == 1007)
    }

    @Test("a client close is echoed and ends the session; invalid codes are 1002")
    func closeHandshake() {
        let (out, session) = run(clientFrame(.close, [0x03, 0xE8] + Array("bye".utf8)) + clientFrame(.text, [0x41]))
        let frames = serverFrames(out)
        #expect(frames.count == 1 && closeCode(frames.first) == 1000)
        #expect(session.state == .closed)
        #expect(closeCode(serverFrames(run(clientFrame(.close, [0x03, 0xEC])).out).last) == 1002)  // 1004 is reserved
        #expect(serverFrames(run(clientFrame(.close, [])).out).first?.0 == .close)
    }

    @Test("going away sends 1001 once, then waits for the client's close")
    func goingAway() {
        var session = WebSocketSession()
        var out: [UInt8] = []
        session.goAway(into: &out)
        session.goAway(into: &out)
        #expect(serverFrames(out).count == 1 && closeCode(serverFrames(out).first) == 1001)
        #expect(session.state == .closeSent)
        // A late message is not echoed; the client's close completes the handshake without a reply.
        var input = clientFrame(.text, [0x41]) + clientFrame(.close, [0x03, 0xE9])
        out = []
        _ = input.withUnsafeMutableBufferPointer { session.consume($0, from: 0, into: &out) }
        #expect(out.isEmpty)
        #expect(session.state == .closed)
    }
}
