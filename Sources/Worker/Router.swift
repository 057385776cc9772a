/// Maps a request to what the worker does with it. Pure apart from reading the head's bytes;
/// the bodies that never change are built once, so the hot routes allocate nothing.
struct Router {
    enum Outcome: Equatable {
        case respond(HTTPStatus, body: [UInt8], contentType: StaticString)
        /// `/sleep`: answer 200 after this many milliseconds, from the loop's timer.
        case sleep(milliseconds: Int)
        case upgrade(accept: String)
        case reject(HTTPStatus)

        static func == (a: Outcome, b: Outcome) -> Bool {
            switch (a, b) {
            case let (.respond(s1, b1, _), .respond(s2, b2, _)): s1 == s2 && b1 == b2
            case let (.sleep(m1), .sleep(m2)): m1 == m2
            case let (.upgrade(k1), .upgrade(k2)): k1 == k2
            case let (.reject(s1), .reject(s2)): s1 == s2
            default: false
            }
        }
    }

    /// The longest `/sleep` we honour, so a typo cannot hold a drain until its deadline.
    static let maxSleepMilliseconds = 600_000

    let hello: [UInt8]
    let whoami: [UInt8]
    let healthy: [UInt8] = Array("ok\n".utf8)
    let draining: [UInt8] = Array("draining\n".utf8)

    init(workerID: String, pid: Int32) {
        hello = Array("hello from hyperglass-worker \(workerID)\n".utf8)
        whoami = Array("{\"worker_id\": \(Router.jsonString(workerID)), \"pid\": \(pid)}\n".utf8)
    }

    func route(_ head: RequestHead, _ buffer: UnsafeBufferPointer<UInt8>, draining isDraining: Bool) -> Outcome {
        var pathEnd = head.target.lowerBound
        while pathEnd < head.target.upperBound, buffer[pathEnd] != UInt8(ascii: "?") { pathEnd += 1 }
        let path = head.target.lowerBound..<pathEnd
        let query = min(pathEnd + 1, head.target.upperBound)..<head.target.upperBound
        let readable = head.method == .get || head.method == .head

        if equals(buffer, path, "/") {
            return readable ? .respond(.ok, body: hello, contentType: "text/plain; charset=utf-8") : .reject(.methodNotAllowed)
        }
        if equals(buffer, path, "/health") {
            guard readable else { return .reject(.methodNotAllowed) }
            return isDraining
                ? .respond(.serviceUnavailable, body: draining, contentType: "text/plain; charset=utf-8")
                : .respond(.ok, body: healthy, contentType: "text/plain; charset=utf-8")
        }
        if equals(buffer, path, "/whoami") {
            return readable ? .respond(.ok, body: whoami, contentType: "application/json") : .reject(.methodNotAllowed)
        }
        if equals(buffer, path, "/sleep") {
            guard readable else { return .reject(.methodNotAllowed) }
            guard let ms = Router.parameter(buffer, query, "ms"), ms <= Router.maxSleepMilliseconds else {
                return .reject(.badRequest)
            }
            return .sleep(milliseconds: ms)
        }
        if equals(buffer, path, "/ws") {
            // A new WebSocket would only be closed again with 1001: send the client to another worker.
            if isDraining { return .reject(.serviceUnavailable) }
            switch WebSocketHandshake.check(head, buffer) {
            case .accept(let key): return .upgrade(accept: key)
            case .reject(let status): return .reject(status)
            }
        }
        return .reject(.notFound)
    }

    /// The decimal value of `name=` in a query string, or nil when absent or not a number.
    static func parameter(_ buffer: UnsafeBufferPointer<UInt8>, _ query: Range<Int>, _ name: StaticString) -> Int? {
        var i = query.lowerBound
        while i < query.upperBound {
            var end = i
            while end < query.upperBound, buffer[end] != UInt8(ascii: "&") { end += 1 }
            var eq = i
            while eq < end, buffer[eq] != UInt8(ascii: "=") { eq += 1 }
            if eq < end, equals(buffer, i..<eq, name) { return HTTPParser.decimal(buffer, (eq + 1)..<end) }
            i = end + 1
        }
        return nil
    }

    /// A JSON string literal for `text`, escaping what JSON requires.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
