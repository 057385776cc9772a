import Foundation
import Glibc
import Testing

/// An unauthenticated `/metrics` flood against a pool of 256 workers (issue 25, item 6), through
/// bench/scale.py: the measurement the benchmark prints, with the goals as the verdict.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct MetricsFloodTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../bench/scale.py").standardized.path

    /// The flood's ping p99 (goal < 5 ms) is printed, not asserted: under a loaded CI machine it measures
    /// the machine. What the fix changed, the supervisor's CPU per scrape (main: 12.4 ms repeated), is.
    @Test("under a /metrics flood at 256 workers a repeated scrape costs the loop under 1 ms of CPU")
    func floodKeepsTheLoopResponsive() {
        // 4 s of flood from 2 client processes; the pinger runs in the driver, apart from the flood's GIL.
        let result = runDriver(["FLOOD=4", "FLOOD_CLIENTS=2", "python3", Self.script, "--bin", Paths.products,
                                "--sizes", "256", "--steps", "scrape,flood", "--check-cpu"], timeout: 150)
        print("scale.py: \(result.out.trimmingCharacters(in: .whitespacesAndNewlines))")
        #expect(result.status == 0, "\(result.err)\(result.out)")
        #expect(result.out.contains("flood "), "the flood did not run: \(result.err)\(result.out)")
    }
}
