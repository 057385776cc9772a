extension ValueParser {
    /// "MIN-MAX" of `workers = auto:MIN-MAX`: 1 <= MIN <= MAX <= 1024.
    public static func workerRange(_ text: String) throws(ConfigValueError) -> ClosedRange<Int> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw ConfigValueError("'auto:\(text)' is not a range; write auto:MIN-MAX, e.g. auto:1-16") }
        let low = try integer(String(parts[0]), in: 1...1024)
        let high = try integer(String(parts[1]), in: 1...1024)
        guard low <= high else { throw ConfigValueError("auto:\(text) has its minimum above its maximum") }
        return low...high
    }
}
