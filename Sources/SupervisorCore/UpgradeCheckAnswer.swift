/// The one line by which `hyperglass upgrade-check` says yes: "hyperglass VERSION can take over state
/// version N". The running supervisor execs the checked binary only on exactly that line, last in the
/// output, for the version it offered: a script or a wrapper that merely says "can take over" somewhere
/// (or prints terminal escapes as its version) is refused, since exec'ing it would end the supervisor.
public enum UpgradeCheckAnswer {
    /// The yes, as the new binary prints it.
    public static func yes(version: String, stateVersion: Int) -> String {
        "hyperglass \(version) can take over state version \(stateVersion)"
    }

    /// The version the check answered yes with, from its whole output; nil for anything else.
    public static func version(in output: String, offered stateVersion: Int) -> String? {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: true)
        guard let last = lines.last else { return nil }
        let words = last.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 8, words[0] == "hyperglass", words[2...6] == ["can", "take", "over", "state", "version"],
              words[7] == Substring(String(stateVersion)) else { return nil }
        let version = words[1]
        guard (1...64).contains(version.utf8.count), version.utf8.allSatisfy(isVersionByte) else { return nil }
        return String(version)
    }

    /// The output as a reply may quote it: at most `limit` characters, control characters shown as '?'.
    public static func shown(_ output: String, limit: Int = 400) -> String {
        String(String.UnicodeScalarView(output.unicodeScalars.prefix(limit).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    }

    private static func isVersionByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): true
        case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "~"), UInt8(ascii: "_"): true
        default: false
        }
    }
}
