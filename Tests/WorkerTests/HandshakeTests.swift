import Testing
@testable import Worker

@Suite("SHA-1, base64 and the WebSocket accept value", .timeLimit(.minutes(1)))
struct HandshakeTests {
    @Test("SHA-1 matches the FIPS 180 test vectors")
    func sha1Vectors() {
        #expect(hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(SHA1.hash([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        let long = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        #expect(hex(SHA1.hash(Array(long.utf8))) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(hex(SHA1.hash([UInt8](repeating: 0x61, count: 1_000_000))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test("base64 round-trips and matches RFC 4648's examples")
    func base64() {
        let cases = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in cases {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(Array(encoded.utf8)) == Array(plain.utf8))
        }
        #expect(Base64.decode(Array("Zm9".utf8)) == nil)
        #expect(Base64.decode(Array("Zm=v".utf8)) == nil)
        #expect(Base64.decode(Array("Zm9v!A==".utf8)) == nil)
    }

    @Test("the accept value for RFC 6455's sample key is the RFC's")
    func rfcSample() {
        // RFC 6455 §1.3 (SHA-1 b37a4f2c…c4ea): key "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
        #expect(WebSocketHandshake.accept(key: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test("an upgrade request is accepted only with a 16-byte key and version 13")
    func handshakeChecks() {
        let good = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        #expect(verdict(good) == .accept("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        #expect(verdict(good.replacingOccurrences("Version: 13", "Version: 8")) == .reject(.upgradeRequired))
        #expect(verdict(good.replacingOccurrences("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")) == .reject(.badRequest))
        #expect(verdict(good.replacingOccurrences("Upgrade: websocket\r\n", "")) == .reject(.badRequest))
        #expect(verdict(good.replacingOccurrences("keep-alive, Upgrade", "keep-alive")) == .reject(.badRequest))
        #expect(verdict(good.replacingOccurrences("GET", "POST")) == .reject(.methodNotAllowed))
    }

    private func verdict(_ request: String) -> WebSocketHandshake.Verdict? {
        let bytes = Array(request.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            guard case .complete(let head) = HTTPParser.parse(buffer, from: 0, maxHeadLength: 16384) else { return nil }
            return WebSocketHandshake.check(head, buffer)
        }
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

extension String {
    /// Foundation-free replacement for tests.
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
