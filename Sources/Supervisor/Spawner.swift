import CHyperglass
import Glibc

/// Starts worker processes the way systemd socket activation would start a service:
/// the listeners at fds 3.., LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, NOTIFY_SOCKET pointing at us.
struct Spawner {
    /// What a configuration release runs: argv (argv[0] absolute, resolved when the config was loaded) and environment.
    struct Release {
        let command: [String]
        /// The supervisor's environment minus what belongs to systemd and us, plus the configured entries.
        let environment: [String]
    }

    let listenerFDs: [Int32]
    let notifySocket: String
    private let inherited: [String]
    /// Every release a live worker may still need (a restart of an old-release slot, a rollback).
    private(set) var releases: [Int: Release] = [:]

    /// Variables describing the supervisor's own relationship with systemd; a worker must not see them.
    static let privateVariables: Set<String> = [
        "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", "HYPERGLASS_WORKER_ID",
    ]

    init(listenerFDs: [Int32], notifySocket: String, inherited: [String]) {
        self.listenerFDs = listenerFDs
        self.notifySocket = notifySocket
        self.inherited = inherited
    }

    mutating func register(release: Int, command: [String], configured: [String]) {
        let overridden = Set(configured.map { String($0.prefix { $0 != "=" }) })
        let environment = inherited.filter { entry in
            let name = String(entry.prefix { $0 != "=" })
            return !Spawner.privateVariables.contains(name) && !overridden.contains(name)
        } + configured
        releases[release] = Release(command: command, environment: environment)
    }

    /// Forgets releases no slot, worker or fallback uses any more.
    mutating func keepOnly(_ inUse: Set<Int>) {
        releases = releases.filter { inUse.contains($0.key) }
    }

    /// Forks and execs one worker; returns its pid once exec succeeded.
    func spawn(slot: Int, release number: Int) throws(SystemError) -> Int32 {
        guard let release = releases[number] else { throw SystemError(operation: "start worker \(slot): internal: release \(number) is unknown", errno: EINVAL) }
        let command = release.command
        let names = Array(repeating: "http", count: listenerFDs.count).joined(separator: ":")
        var env = release.environment + [
            "LISTEN_FDS=\(listenerFDs.count)",
            "LISTEN_FDNAMES=\(names)",
            "NOTIFY_SOCKET=\(notifySocket)",
            "HYPERGLASS_WORKER_ID=\(slot)",
        ]
        // The child writes its own pid here between fork and exec; the padding is room for the digits.
        let listenPIDIndex = env.count
        env.append("LISTEN_PID=" + String(repeating: " ", count: 24))
        var error: Int32 = 0
        let pid = withCStrings(command) { argv in
            withCStrings(env) { envp in
                hg_spawn(argv[0], argv, envp, Int32(listenPIDIndex), listenerFDs, Int32(listenerFDs.count), &error)
            }
        }
        guard pid > 0 else { throw SystemError(operation: "start \(command[0])", errno: error) }
        return pid
    }
}

/// A NULL-terminated char* array valid for the duration of `body`.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { buffer in
        body(UnsafeMutablePointer(mutating: buffer.baseAddress!))
    }
}
