/// The server side of the opening handshake (RFC 6455 §4.2).
enum WebSocketHandshake {
    /// The GUID every server appends to the client's key (§1.3).
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
    static func accept(key: String) -> String {
        Base64.encode(SHA1.hash(Array((key + guid).utf8)))
    }

    enum Verdict: Equatable {
        case accept(String)
        /// Not a valid upgrade: answer with this status (426 carries the version we speak).
        case reject(HTTPStatus)
    }

    /// Checks an upgrade request and computes the accept value.
    static func check(_ head: RequestHead, _ buffer: UnsafeBufferPointer<UInt8>) -> Verdict {
        guard head.method == .get else { return .reject(.methodNotAllowed) }
        guard head.minorVersion == 1, head.upgradeWebSocket, let keyRange = head.webSocketKey else {
            return .reject(.badRequest)
        }
        guard let versionRange = head.webSocketVersion, equals(buffer, versionRange, "13") else {
            return .reject(.upgradeRequired)
        }
        let key = Array(buffer[keyRange])
        // The key must be base64 of 16 random bytes (§4.1); anything else is not a WebSocket client.
        guard let nonce = Base64.decode(key), nonce.count == 16 else { return .reject(.badRequest) }
        return .accept(accept(key: String(decoding: key, as: UTF8.self)))
    }
}
