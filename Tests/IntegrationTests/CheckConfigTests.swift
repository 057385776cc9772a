import Foundation
import Testing

/// `hyperglass check-config` as an operator runs it: refusals exit 78 naming the file, line and key,
/// and what it prints is a file it accepts again unchanged.
@Suite("check-config", .timeLimit(.minutes(1)))
struct CheckConfigTests {
    private func write(_ text: String) throws -> (directory: String, path: String) {
        let directory = Paths.temporaryDirectory()
        let path = directory + "/supervisor.conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (directory, path)
    }

    @Test("backoff_initial = 0 and sub-megabyte memory ceilings exit 78 naming the file, line and key")
    func nonsenseValuesExit78() throws {
        for (text, expected) in [("[restart]\nbackoff_initial = 0\n", "supervisor.conf:2: backoff_initial: '0' is too short; expected a duration of at least 10ms"),
                                 ("[worker]\nreadiness = exec\nmax_memory = 0.5\n", "supervisor.conf:3: max_memory: '0.5' is not a whole number of bytes"),
                                 ("[worker]\nmax_memory = 1B\n", "supervisor.conf:2: max_memory: '1B' is below 1M")] {
            let file = try write(text)
            defer { try? FileManager.default.removeItem(atPath: file.directory) }
            let result = runProgram(Paths.hyperglass, ["check-config", "--config", file.path])
            #expect(result.status == 78, "\(text): \(result.err)")
            #expect(result.err.contains(expected), "\(result.err)")
            #expect(result.out.isEmpty)
        }
    }

    @Test("what check-config prints, check-config accepts and prints again the same")
    func outputRoundTrips() throws {
        let file = try write("""
            [supervisor]
            workers = 2
            graceful_timeout = 1.25s
            [worker]
            command = /bin/sh -c 'exec sleep 1'
            max_memory = 1536K
            watchdog = 150.5ms
            [health]
            health_path = /health
            """)
        defer { try? FileManager.default.removeItem(atPath: file.directory) }
        let first = runProgram(Paths.hyperglass, ["check-config", "--config", file.path])
        #expect(first.status == 0, "\(first.err)")
        try first.out.write(toFile: file.path, atomically: true, encoding: .utf8)
        let second = runProgram(Paths.hyperglass, ["check-config", "--config", file.path])
        #expect(second.status == 0, "\(second.err)")
        // Only the header (which names the file) may differ; it is the same file here.
        #expect(second.out == first.out)
        #expect(first.out.contains("max_memory = 1536K\n") && first.out.contains("graceful_timeout = 1250ms\n"), "\(first.out)")
    }
}
