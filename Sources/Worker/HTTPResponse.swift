/// Writes whole responses into a connection's output buffer, so each goes out in one write().
enum HTTPResponse {
    /// How the response speaks about the connection's future.
    enum Persistence {
        /// HTTP/1.1 keep-alive, the default: no header needed.
        case keepAlive
        /// HTTP/1.0 keep-alive must be said explicitly.
        case keepAliveHTTP10
        /// The connection closes after this response.
        case close
    }

    /// Appends a complete response. `headOnly` answers HEAD: same headers, no body.
    static func append(
        status: HTTPStatus, contentType: StaticString, body: [UInt8], persistence: Persistence,
        headOnly: Bool = false, extraHeaders: StaticString = "", to out: inout [UInt8]
    ) {
        out.append(status.line)
        out.append("Server: hyperglass-worker\r\nContent-Type: ")
        out.append(contentType)
        out.append("\r\nContent-Length: ")
        out.appendDecimal(body.count)
        switch persistence {
        case .keepAlive: out.append("\r\n")
        case .keepAliveHTTP10: out.append("\r\nConnection: keep-alive\r\n")
        case .close: out.append("\r\nConnection: close\r\n")
        }
        out.append(extraHeaders)
        out.append("\r\n")
        if !headOnly { out.append(contentsOf: body) }
    }

    /// Appends a plain-text error whose body names the status, closing or not as asked.
    static func appendError(_ status: HTTPStatus, persistence: Persistence = .close, extraHeaders: StaticString = "", to out: inout [UInt8]) {
        let text = status.line.withUTF8Buffer { Array($0.dropFirst(9).dropLast(2)) } + [lf]
        append(status: status, contentType: "text/plain; charset=utf-8", body: text, persistence: persistence,
               extraHeaders: extraHeaders, to: &out)
    }

    /// The 101 that switches a connection to WebSocket (RFC 6455 §4.2.2).
    static func appendSwitchingProtocols(accept: String, to out: inout [UInt8]) {
        out.append(HTTPStatus.switchingProtocols.line)
        out.append("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        out.append(contentsOf: accept.utf8)
        out.append("\r\n\r\n")
    }
}
