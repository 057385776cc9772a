import Testing
@testable import Worker

@Suite("HTTP/1.1 request parsing", .timeLimit(.minutes(1)))
struct HTTPParserTests {
    private func parse(_ text: String, from start: Int = 0, max: Int = 16384) -> HTTPParser.Result {
        Array(text.utf8).withUnsafeBufferPointer { HTTPParser.parse($0, from: start, maxHeadLength: max) }
    }

    private func parsedHead(_ text: String) -> RequestHead? {
        if case .complete(let head) = parse(text) { return head }
        return nil
    }

    @Test("a simple GET gives method, target, version and keep-alive")
    func simpleGet() throws {
        let text = "GET /sleep?ms=5 HTTP/1.1\r\nHost: x\r\n\r\n"
        let head = try #require(parsedHead(text))
        #expect(head.method == .get)
        #expect(Array(Array(text.utf8)[head.target]) == Array("/sleep?ms=5".utf8))
        #expect(head.minorVersion == 1 && head.keepAlive && head.contentLength == 0)
        #expect(head.headLength == text.utf8.count)
    }

    @Test("an absolute-form target (RFC 9112 §3.2.2: a server must accept it) is its path; a scheme without a path, or no scheme, is 400")
    func absoluteForm() throws {
        let text = "GET http://127.0.0.1:8001/health?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        let head = try #require(parsedHead(text))
        #expect(Array(Array(text.utf8)[head.target]) == Array("/health?x=1".utf8))
        #expect(parse("GET http://127.0.0.1 HTTP/1.1\r\nHost: x\r\n\r\n") == .failure(.badRequest))
        #expect(parse("GET health HTTP/1.1\r\nHost: x\r\n\r\n") == .failure(.badRequest))
    }

    @Test("keep-alive follows the version and the Connection header")
    func persistence() {
        #expect(parsedHead("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?.keepAlive == false)
        #expect(parsedHead("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(parsedHead("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")?.keepAlive == true)
        #expect(parsedHead("GET / HTTP/1.1\r\nHost: x\r\nCONNECTION: foo, Close\r\n\r\n")?.keepAlive == false)
    }

    @Test("a head split anywhere is incomplete until its blank line arrives")
    func incomplete() {
        let text = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        for cut in 0..<text.utf8.count {
            #expect(parse(String(text.utf8.prefix(cut))!) == .incomplete, "cut at \(cut)")
        }
    }

    @Test("pipelined requests parse one after another from the previous end")
    func pipelined() throws {
        let first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", second = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        let text = first + second
        let one = try #require(parsedHead(text))
        #expect(one.headLength == first.utf8.count)
        guard case .complete(let two) = parse(text, from: one.headLength) else { Issue.record("second request"); return }
        #expect(two.method == .post && two.contentLength == 3)
        #expect(Array(Array(text.utf8)[two.target]) == Array("/b".utf8))
    }

    @Test("malformed heads are 400, never a crash", arguments: [
        "GET\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", "GET http://x/ HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost x\r\n\r\n", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "GET / HTTP/1.1\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "\u{0}\u{0}\u{0}\r\n\r\n", "GET / HTTP/1.1\n\n\r\n\r\n",
    ])
    func malformed(_ text: String) {
        #expect(parse(text) == .failure(.badRequest))
    }

    @Test("other versions are 505, chunked bodies 501")
    func unsupported() {
        #expect(parse("GET / HTTP/2.0\r\n\r\n") == .failure(.versionNotSupported))
        #expect(parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") == .failure(.notImplemented))
    }

    @Test("a head over the limit is 431, whether complete or not")
    func tooLarge() {
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200)
        #expect(parse(big, max: 100) == .failure(.headersTooLarge))
        #expect(parse(big + "\r\n\r\n", max: 100) == .failure(.headersTooLarge))
        #expect(parse(big, max: 1000) == .incomplete)
    }

    @Test("an HTTP/1.1 request without Host is 400 (RFC 9112 §3.2); HTTP/1.0 needs none")
    func host() {
        #expect(parse("GET / HTTP/1.1\r\n\r\n") == .failure(.badRequest))
        #expect(parse("GET / HTTP/1.1\r\nX-Host: x\r\n\r\n") == .failure(.badRequest))
        #expect(parsedHead("GET / HTTP/1.1\r\nhost: x\r\n\r\n") != nil)
        #expect(parsedHead("GET / HTTP/1.0\r\n\r\n") != nil)
    }

    @Test("a few empty lines before the request line are skipped; more are 400, at once")
    func leadingEmptyLines() throws {
        let head = try #require(parsedHead("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(head.headLength == 4 + 27)
        #expect(parse(String(repeating: "\r\n", count: HTTPParser.maxLeadingEmptyLines)) == .incomplete)
        #expect(parse(String(repeating: "\r\n", count: HTTPParser.maxLeadingEmptyLines + 1)) == .failure(.badRequest))
        #expect(parse(String(repeating: "\r\n", count: 100_000)) == .failure(.badRequest))
    }

    @Test("empty lines before the request line count against the head limit")
    func leadingEmptyLinesCount() {
        let head = "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 60) + "\r\n\r\n"
        #expect(parsedHead(head) != nil)
        #expect(parse(head, max: head.utf8.count) != .failure(.headersTooLarge))
        #expect(parse("\r\n\r\n" + head, max: head.utf8.count) == .failure(.headersTooLarge))
        #expect(parse("\r\n\r\n" + String(decoding: head.utf8.dropLast(2), as: UTF8.self), max: head.utf8.count) == .failure(.headersTooLarge))
    }

    @Test("the router maps paths, methods and the drain state to outcomes")
    func routes() {
        let router = Router(workerID: "3", pid: 42)
        func route(_ text: String, draining: Bool = false) -> Router.Outcome? {
            Array(text.utf8).withUnsafeBufferPointer { buffer in
                guard case .complete(let head) = HTTPParser.parse(buffer, from: 0, maxHeadLength: 16384) else { return nil }
                return router.route(head, buffer, draining: draining)
            }
        }
        #expect(route("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == .respond(.ok, body: Array("hello from hyperglass-worker 3\n".utf8), contentType: ""))
        #expect(route("GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n") == .respond(.ok, body: Array("{\"worker_id\": \"3\", \"pid\": 42}\n".utf8), contentType: ""))
        #expect(route("GET /health HTTP/1.1\r\nHost: x\r\n\r\n") == .respond(.ok, body: Array("ok\n".utf8), contentType: ""))
        #expect(route("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", draining: true) == .respond(.serviceUnavailable, body: Array("draining\n".utf8), contentType: ""))
        #expect(route("GET /sleep?x=1&ms=250 HTTP/1.1\r\nHost: x\r\n\r\n") == .sleep(milliseconds: 250))
        #expect(route("GET /sleep?ms=abc HTTP/1.1\r\nHost: x\r\n\r\n") == .reject(.badRequest))
        #expect(route("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n") == .reject(.methodNotAllowed))
        #expect(route("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n") == .reject(.notFound))
        #expect(route("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n") == .reject(.badRequest))
    }
}
