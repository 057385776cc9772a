/// The bounds that keep one client from holding memory or a drain open forever.
struct Limits {
    /// Request line plus headers; more is answered with 431.
    var maxHeadLength = 16 * 1024
    /// Content-Length above this is answered with 413.
    var maxBodyLength = 1 << 20
    /// A keep-alive connection with no request in progress is closed after this.
    var idleTimeout: UInt64 = 60 * nanosecondsPerSecond
    /// A request (head and body) must arrive completely within this of its first byte, else 408; a
    /// WebSocket frame likewise, else close 1008. Measured from the first byte, never reset by later
    /// ones (slow-loris).
    var requestTimeout: UInt64 = 30 * nanosecondsPerSecond
    /// Output that makes no progress for this long means the reader is gone.
    var writeTimeout: UInt64 = 60 * nanosecondsPerSecond
    /// How long we read and discard after our FIN, so the client sees our last response, not a reset.
    var lingerTimeout: UInt64 = 2 * nanosecondsPerSecond
    /// During a drain an idle keep-alive connection stays open this long, so a request already on its
    /// way is answered (with `Connection: close`) instead of meeting a closed socket.
    var drainIdleGrace: UInt64 = 1 * nanosecondsPerSecond
    /// How long we wait for the client's close frame after sending ours.
    var closeHandshakeTimeout: UInt64 = 5 * nanosecondsPerSecond
    /// Unsent output above this stops reading from the client (backpressure on pipelining).
    var maxPendingOutput = 1 << 20
    var maxWebSocketMessage = WebSocketSession.defaultMaxMessage
    /// Connections served at once (`--max-connections`, like nginx's `worker_connections`); 0 means no
    /// cap. At the cap the worker stops accepting, so workers with room take the new connections; when the
    /// accept queue stays non-empty for `refusalChecks` checks in a row (every worker is full, or too busy
    /// to take them for that long), what waits gets a 503.
    var maxConnections = 0
    /// How often a worker at its cap looks whether connections wait in the accept queue.
    var refusalCheckInterval: UInt64 = 250_000_000
    /// Checks in a row that must see connections waiting before they are refused: 1 to 1.25 s of a queue
    /// that never emptied. Shorter, a worker with room but short of CPU (a loaded host) lost connections
    /// to a full one's refusal (measured: 1 of 10,000 at load average 12 with 2 checks 100 ms apart).
    var refusalChecks = 5
    /// Refused connections kept open to linger after their 503 (so it is read, not reset); past this
    /// the 503 is sent and the socket closed at once.
    var maxLingeringRefusals = 64
    /// A WebSocket that sends nothing for this long gets a ping; one silent for as long again is closed
    /// with 1001 (`--websocket-idle-timeout`); 0 means never.
    var webSocketIdleTimeout: UInt64 = 0
}

let nanosecondsPerSecond: UInt64 = 1_000_000_000
