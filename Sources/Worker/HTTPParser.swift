/// Parses one HTTP/1.1 request head (RFC 9112) from the start of a buffer. Pure and allocation-free:
/// the connection calls it again on the bytes after each request, which makes pipelining safe.
enum HTTPParser {
    enum Result: Equatable {
        /// More bytes are needed.
        case incomplete
        case complete(RequestHead)
        /// The head is malformed or over a limit; answer with this status and close.
        case failure(HTTPStatus)
    }

    /// Empty lines tolerated before a request line. RFC 9112 §2.2 asks servers to ignore "at least
    /// one" (clients that send CRLF after a body); more than a few is a client feeding us bytes that
    /// are not a request.
    static let maxLeadingEmptyLines = 4

    /// Parses `buffer[start...]`; ranges in the result index `buffer`.
    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, maxHeadLength: Int) -> Result {
        var p = start
        let end = buffer.count
        // RFC 9112 §2.2: ignore empty lines before the request line, but only a few, and they count
        // against the head limit: uncounted, a CRLF flood was buffered without bound until the 408.
        var emptyLines = 0
        while p + 1 < end, buffer[p] == cr, buffer[p + 1] == lf {
            emptyLines += 1
            guard emptyLines <= maxLeadingEmptyLines else { return .failure(.badRequest) }
            p += 2
        }
        let headStart = p
        guard let headEnd = findHeadEnd(buffer, from: headStart, limit: start + maxHeadLength) else {
            return end - start > maxHeadLength ? .failure(.headersTooLarge) : .incomplete
        }
        var head = RequestHead()
        head.headLength = headEnd - start

        // Request line: method SP target SP HTTP/1.x CRLF
        let methodStart = p
        while p < headEnd, isToken(buffer[p]) { p += 1 }
        guard p > methodStart, p < headEnd, buffer[p] == sp else { return .failure(.badRequest) }
        head.method = method(buffer, methodStart..<p)
        p += 1
        let targetStart = p
        while p < headEnd, buffer[p] > sp, buffer[p] != 0x7F { p += 1 }
        guard p > targetStart, p < headEnd, buffer[p] == sp else { return .failure(.badRequest) }
        // Origin form ("/path?query"), or absolute form ("http://host/path?query"), which RFC 9112 §3.2.2
        // says a server must accept: its path is the target. Nothing else: we are not a proxy.
        var pathStart = targetStart
        if buffer[targetStart] != UInt8(ascii: "/") {
            guard let path = absoluteFormPath(buffer, targetStart..<p) else { return .failure(.badRequest) }
            pathStart = path
        }
        head.target = pathStart..<p
        p += 1
        // "HTTP/" DIGIT "." DIGIT CRLF; a well-formed version other than 1.x is 505, anything else 400.
        guard p + 10 <= headEnd, matches(buffer, p, "HTTP/"), isDigit(buffer[p + 5]), buffer[p + 6] == UInt8(ascii: "."),
              isDigit(buffer[p + 7]), buffer[p + 8] == cr, buffer[p + 9] == lf else { return .failure(.badRequest) }
        guard buffer[p + 5] == UInt8(ascii: "1"), buffer[p + 7] <= UInt8(ascii: "1") else { return .failure(.versionNotSupported) }
        head.minorVersion = Int(buffer[p + 7] - UInt8(ascii: "0"))
        p += 10

        var connection = ConnectionTokens()
        var upgradeWebSocket = false
        var sawContentLength = false
        var sawTransferEncoding = false
        var hosts = 0
        // Header fields until the blank line that ends the head.
        while !(buffer[p] == cr && buffer[p + 1] == lf) {
            let nameStart = p
            while isToken(buffer[p]) { p += 1 }
            // No whitespace between name and colon (§5.1), no obsolete line folding (§5.2).
            guard p > nameStart, buffer[p] == UInt8(ascii: ":") else { return .failure(.badRequest) }
            let name = nameStart..<p
            p += 1
            while buffer[p] == sp || buffer[p] == tab { p += 1 }
            let valueStart = p
            while buffer[p] != cr {
                let c = buffer[p]
                guard c >= sp || c == tab, c != 0x7F else { return .failure(.badRequest) }
                p += 1
            }
            guard buffer[p + 1] == lf else { return .failure(.badRequest) }
            var valueEnd = p
            while valueEnd > valueStart, buffer[valueEnd - 1] == sp || buffer[valueEnd - 1] == tab { valueEnd -= 1 }
            let value = valueStart..<valueEnd
            p += 2

            switch name.count {
            case 4 where equalsIgnoringCase(buffer, name, "host"):
                hosts += 1
            case 7 where equalsIgnoringCase(buffer, name, "upgrade"):
                if containsToken(buffer, value, "websocket") { upgradeWebSocket = true }
            case 10 where equalsIgnoringCase(buffer, name, "connection"):
                connection.add(buffer, value)
            case 14 where equalsIgnoringCase(buffer, name, "content-length"):
                guard let length = decimal(buffer, value) else { return .failure(.badRequest) }
                // Repeated Content-Length must agree (§6.3), else the message framing is ambiguous.
                guard !sawContentLength || length == head.contentLength else { return .failure(.badRequest) }
                sawContentLength = true
                head.contentLength = length
            case 17 where equalsIgnoringCase(buffer, name, "transfer-encoding"):
                sawTransferEncoding = true
            case 17 where equalsIgnoringCase(buffer, name, "sec-websocket-key"):
                head.webSocketKey = value
            case 21 where equalsIgnoringCase(buffer, name, "sec-websocket-version"):
                head.webSocketVersion = value
            default:
                break
            }
        }
        // Both framings at once is a request-smuggling shape (§6.3): refuse it.
        if sawTransferEncoding { return .failure(sawContentLength ? .badRequest : .notImplemented) }
        // A second Host is ambiguous about which site is meant (§3.2).
        if hosts > 1 { return .failure(.badRequest) }
        // HTTP/1.1 requires exactly one Host (RFC 9112 §3.2): a server MUST answer 400 without it.
        if head.minorVersion == 1 && hosts == 0 { return .failure(.badRequest) }
        head.keepAlive = head.minorVersion == 1 ? !connection.close : connection.keepAlive && !connection.close
        head.upgradeWebSocket = upgradeWebSocket && connection.upgrade
        return .complete(head)
    }

    /// The index just past the CRLFCRLF that ends the head, searched below `limit`.
    /// Where the path of an absolute-form target ("http://host:8001/path", "https://…") starts; nil when the
    /// target is not one, or has no path.
    static func absoluteFormPath(_ buffer: UnsafeBufferPointer<UInt8>, _ target: Range<Int>) -> Int? {
        var p = target.lowerBound
        while p < target.upperBound, isSchemeCharacter(buffer[p]) { p += 1 }
        guard p > target.lowerBound, p + 3 <= target.upperBound, buffer[p] == UInt8(ascii: ":"),
              buffer[p + 1] == UInt8(ascii: "/"), buffer[p + 2] == UInt8(ascii: "/") else { return nil }
        p += 3
        while p < target.upperBound, buffer[p] != UInt8(ascii: "/") { p += 1 }
        return p < target.upperBound ? p : nil
    }

    private static func isSchemeCharacter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    private static func findHeadEnd(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, limit: Int) -> Int? {
        let end = min(buffer.count, limit)
        var i = start
        while i + 3 < end {
            if buffer[i + 3] != lf { i += buffer[i + 3] == cr ? 1 : 4; continue }
            if buffer[i] == cr, buffer[i + 1] == lf, buffer[i + 2] == cr { return i + 4 }
            i += 1
        }
        return nil
    }

    private static func method(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> RequestHead.Method {
        switch range.count {
        case 3: return equals(buffer, range, "GET") ? .get : equals(buffer, range, "PUT") ? .put : .other
        case 4: return equals(buffer, range, "HEAD") ? .head : equals(buffer, range, "POST") ? .post : .other
        case 5: return equals(buffer, range, "PATCH") ? .patch : .other
        case 6: return equals(buffer, range, "DELETE") ? .delete : .other
        case 7: return equals(buffer, range, "OPTIONS") ? .options : .other
        default: return .other
        }
    }

    /// The value of a non-empty run of digits, or nil (signs, spaces, lists and overflow are malformed).
    static func decimal(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 15 else { return nil }
        var value = 0
        for i in range {
            let digit = buffer[i] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }
}

/// The tokens of `Connection` headers that change what we do.
private struct ConnectionTokens {
    var close = false, keepAlive = false, upgrade = false

    mutating func add(_ buffer: UnsafeBufferPointer<UInt8>, _ value: Range<Int>) {
        if containsToken(buffer, value, "close") { close = true }
        if containsToken(buffer, value, "keep-alive") { keepAlive = true }
        if containsToken(buffer, value, "upgrade") { upgrade = true }
    }
}
