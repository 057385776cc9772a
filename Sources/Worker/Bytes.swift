/// Byte-level helpers for parsing HTTP without building strings.
let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

/// The `tchar` set of RFC 9110 §5.6.2, as a 128-entry table.
private let tokenTable: [Bool] = (0..<128).map { (c: Int) -> Bool in
    let s = UnicodeScalar(UInt8(c))
    if ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s) { return true }
    return "!#$%&'*+-.^_`|~".unicodeScalars.contains(s)
}

@inline(__always)
func isToken(_ c: UInt8) -> Bool { c < 128 && tokenTable[Int(c)] }

@inline(__always)
func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

/// Whether the bytes at `offset` spell `literal` exactly.
func matches(_ buffer: UnsafeBufferPointer<UInt8>, _ offset: Int, _ literal: StaticString) -> Bool {
    let n = literal.utf8CodeUnitCount
    guard offset + n <= buffer.count else { return false }
    let lit = literal.utf8Start
    for i in 0..<n where buffer[offset + i] != lit[i] { return false }
    return true
}

/// Whether `range` of `buffer` is exactly `literal`.
func equals(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    range.count == literal.utf8CodeUnitCount && matches(buffer, range.lowerBound, literal)
}

/// Whether `range` equals `literal` (which must be lowercase) ignoring ASCII case.
func equalsIgnoringCase(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    guard range.count == literal.utf8CodeUnitCount else { return false }
    let lit = literal.utf8Start
    for i in 0..<range.count where lowercased(buffer[range.lowerBound + i]) != lit[i] { return false }
    return true
}

@inline(__always)
func lowercased(_ c: UInt8) -> UInt8 { c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") ? c | 0x20 : c }

/// Whether a comma-separated header value holds `token` (lowercase), ignoring case and spaces.
func containsToken(_ buffer: UnsafeBufferPointer<UInt8>, _ value: Range<Int>, _ token: StaticString) -> Bool {
    var i = value.lowerBound
    while i < value.upperBound {
        while i < value.upperBound, buffer[i] == sp || buffer[i] == tab || buffer[i] == UInt8(ascii: ",") { i += 1 }
        let start = i
        while i < value.upperBound, buffer[i] != UInt8(ascii: ",") { i += 1 }
        var end = i
        while end > start, buffer[end - 1] == sp || buffer[end - 1] == tab { end -= 1 }
        if equalsIgnoringCase(buffer, start..<end, token) { return true }
    }
    return false
}

extension Array where Element == UInt8 {
    /// Appends a literal's bytes with one copy.
    @inline(__always)
    mutating func append(_ literal: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Appends a non-negative integer in decimal without making a String.
    mutating func appendDecimal(_ value: Int) {
        precondition(value >= 0, "only lengths and codes are written as decimals")
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
