/// What the worker needs from one request head: positions into the receive buffer instead of
/// strings, so a keep-alive request costs no allocation.
struct RequestHead: Equatable {
    enum Method: Equatable { case get, head, post, put, delete, options, patch, other }

    var method: Method = .other
    /// The request target (origin form: path and query), as a range of the parsed buffer.
    var target: Range<Int> = 0..<0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    var minorVersion = 1
    var contentLength = 0
    /// Whether the client may send another request on this connection (HTTP/1.1 default, or 1.0 with keep-alive).
    var keepAlive = true
    /// `Upgrade: websocket` and `Connection: upgrade` were both present.
    var upgradeWebSocket = false
    /// `Sec-WebSocket-Key`, as a range of the parsed buffer.
    var webSocketKey: Range<Int>? = nil
    /// `Sec-WebSocket-Version`, as a range of the parsed buffer.
    var webSocketVersion: Range<Int>? = nil
    /// Bytes from the start of the request line through the blank line.
    var headLength = 0
}

/// The statuses this worker answers with.
enum HTTPStatus: Int, Sendable {
    case switchingProtocols = 101
    case ok = 200
    case badRequest = 400
    case notFound = 404
    case methodNotAllowed = 405
    case requestTimeout = 408
    case contentTooLarge = 413
    case uriTooLong = 414
    case upgradeRequired = 426
    case headersTooLarge = 431
    case notImplemented = 501
    case serviceUnavailable = 503
    case versionNotSupported = 505

    /// The status line, CRLF included.
    var line: StaticString {
        switch self {
        case .switchingProtocols: "HTTP/1.1 101 Switching Protocols\r\n"
        case .ok: "HTTP/1.1 200 OK\r\n"
        case .badRequest: "HTTP/1.1 400 Bad Request\r\n"
        case .notFound: "HTTP/1.1 404 Not Found\r\n"
        case .methodNotAllowed: "HTTP/1.1 405 Method Not Allowed\r\n"
        case .requestTimeout: "HTTP/1.1 408 Request Timeout\r\n"
        case .contentTooLarge: "HTTP/1.1 413 Content Too Large\r\n"
        case .uriTooLong: "HTTP/1.1 414 URI Too Long\r\n"
        case .upgradeRequired: "HTTP/1.1 426 Upgrade Required\r\n"
        case .headersTooLarge: "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        case .notImplemented: "HTTP/1.1 501 Not Implemented\r\n"
        case .serviceUnavailable: "HTTP/1.1 503 Service Unavailable\r\n"
        case .versionNotSupported: "HTTP/1.1 505 HTTP Version Not Supported\r\n"
        }
    }
}
