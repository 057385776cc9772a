import Glibc

/// Reads the process environment without Foundation, so a worker stays small.
public enum Environment {
    /// The value of `name`, or nil when it is unset.
    public static func get(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }

    /// Removes `name`, so children we might start do not inherit a protocol meant for us.
    static func unset(_ name: String) {
        unsetenv(name)
    }
}

/// This worker's slot in the supervisor's pool, for logs and responses.
public enum WorkerIdentity {
    /// `HYPERGLASS_WORKER_ID` from the supervisor, or "standalone" when run alone.
    public static func current() -> String {
        Environment.get("HYPERGLASS_WORKER_ID").flatMap { $0.isEmpty ? nil : $0 } ?? "standalone"
    }
}
