/// The RFC 6455 §5.2 frame format: reading client frames in place and writing server frames.
enum WebSocketFrame {
    enum Opcode: UInt8 {
        case continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA

        var isControl: Bool { rawValue & 0x8 != 0 }
    }

    struct Header: Equatable {
        var fin: Bool
        var opcode: Opcode
        /// The masking key, or nil for an unmasked frame.
        var mask: (UInt8, UInt8, UInt8, UInt8)?
        var payloadLength: Int
        /// Bytes before the payload: 2 to 14.
        var headerLength: Int

        static func == (a: Header, b: Header) -> Bool {
            a.fin == b.fin && a.opcode == b.opcode && a.payloadLength == b.payloadLength
                && a.headerLength == b.headerLength && (a.mask.map { [$0.0, $0.1, $0.2, $0.3] } == b.mask.map { [$0.0, $0.1, $0.2, $0.3] })
        }
    }

    enum Parse: Equatable {
        case incomplete
        case header(Header)
        /// The frame breaks the protocol; fail the connection with this close code.
        case failure(CloseCode)
    }

    /// Reads a client frame's header at `start`. Checks what can be checked before the payload
    /// arrives, so an oversized frame is refused without buffering it.
    static func parseHeader(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, maxPayload: Int) -> Parse {
        let available = buffer.count - start
        guard available >= 2 else { return .incomplete }
        let b0 = buffer[start], b1 = buffer[start + 1]
        // No extension was negotiated, so every RSV bit must be clear (§5.2).
        guard b0 & 0x70 == 0, let opcode = Opcode(rawValue: b0 & 0x0F) else { return .failure(.protocolError) }
        let fin = b0 & 0x80 != 0
        var length = Int(b1 & 0x7F)
        var offset = 2
        if length == 126 {
            guard available >= 4 else { return .incomplete }
            length = Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
            offset = 4
        } else if length == 127 {
            guard available >= 10 else { return .incomplete }
            var value: UInt64 = 0
            for i in 2..<10 { value = value << 8 | UInt64(buffer[start + i]) }
            // The most significant bit must be 0 (§5.2); past that, only our size limit matters.
            guard value >> 63 == 0 else { return .failure(.protocolError) }
            guard value <= UInt64(maxPayload) else { return .failure(.messageTooBig) }
            length = Int(value)
            offset = 10
        }
        // Control frames are short and never fragmented (§5.5).
        if opcode.isControl, !fin || length > 125 { return .failure(.protocolError) }
        if length > maxPayload { return .failure(.messageTooBig) }
        var mask: (UInt8, UInt8, UInt8, UInt8)? = nil
        if b1 & 0x80 != 0 {
            guard available >= offset + 4 else { return .incomplete }
            mask = (buffer[start + offset], buffer[start + offset + 1], buffer[start + offset + 2], buffer[start + offset + 3])
            offset += 4
        }
        return .header(Header(fin: fin, opcode: opcode, mask: mask, payloadLength: length, headerLength: offset))
    }

    /// Unmasks (or masks: XOR is its own inverse) a payload in place (§5.3).
    static func unmask(_ buffer: UnsafeMutableBufferPointer<UInt8>, _ range: Range<Int>, key: (UInt8, UInt8, UInt8, UInt8)) {
        let k = [key.0, key.1, key.2, key.3]
        var j = 0
        for i in range {
            buffer[i] ^= k[j & 3]
            j &+= 1
        }
    }

    /// Appends one frame. Servers send unmasked frames; `mask` is for clients (our tests).
    static func append(
        opcode: Opcode, fin: Bool = true, payload: UnsafeBufferPointer<UInt8>,
        mask: (UInt8, UInt8, UInt8, UInt8)? = nil, to out: inout [UInt8]
    ) {
        out.append((fin ? 0x80 : 0) | opcode.rawValue)
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let n = payload.count
        if n < 126 {
            out.append(maskBit | UInt8(n))
        } else if n <= 0xFFFF {
            out.append(maskBit | 126)
            out.append(UInt8(n >> 8))
            out.append(UInt8(n & 0xFF))
        } else {
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: UInt64(n) >> UInt64(shift))) }
        }
        let start = out.count + (mask == nil ? 0 : 4)
        if let mask { out.append(contentsOf: [mask.0, mask.1, mask.2, mask.3]) }
        out.append(contentsOf: payload)
        if let mask {
            out.withUnsafeMutableBufferPointer { unmask($0, start..<$0.count, key: mask) }
        }
    }

    /// Convenience for arrays.
    static func append(opcode: Opcode, fin: Bool = true, payload: [UInt8], mask: (UInt8, UInt8, UInt8, UInt8)? = nil, to out: inout [UInt8]) {
        payload.withUnsafeBufferPointer { append(opcode: opcode, fin: fin, payload: $0, mask: mask, to: &out) }
    }

    /// Appends a close frame with a status code and an optional reason.
    static func appendClose(_ code: CloseCode, reason: StaticString = "", to out: inout [UInt8]) {
        var payload: [UInt8] = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        payload.append(reason)
        append(opcode: .close, payload: payload, to: &out)
    }
}

/// The close codes of RFC 6455 §7.4.1 that this worker sends, and the test for ones it receives.
struct CloseCode: RawRepresentable, Equatable, Sendable {
    let rawValue: UInt16

    static let normal = CloseCode(rawValue: 1000)
    static let goingAway = CloseCode(rawValue: 1001)
    static let protocolError = CloseCode(rawValue: 1002)
    static let invalidPayload = CloseCode(rawValue: 1007)
    static let policyViolation = CloseCode(rawValue: 1008)
    static let messageTooBig = CloseCode(rawValue: 1009)

    /// Whether a peer may send this code in a close frame (§7.4): 1004-1006 and 1015 are reserved
    /// for reporting, never for the wire; 3000-4999 belong to libraries and applications.
    var isValidOnTheWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014: true
        case 3000...4999: true
        default: false
        }
    }
}
