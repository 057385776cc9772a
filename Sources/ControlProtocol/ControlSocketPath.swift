/// Where the control socket is when nobody said: the supervisor listens and `hyperglassctl` looks
/// there, so both take it from this one rule. systemd's RuntimeDirectory first, then
/// /run/hyperglass for root, else $XDG_RUNTIME_DIR/hyperglass.
public enum ControlSocketPath {
    public static func `default`(environment: [String: String], isRoot: Bool) -> String {
        if let runtime = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first { return "\(runtime)/control.sock" }
        if !isRoot, let xdg = environment["XDG_RUNTIME_DIR"], !xdg.isEmpty { return "\(xdg)/hyperglass/control.sock" }
        return "/run/hyperglass/control.sock"
    }
}
