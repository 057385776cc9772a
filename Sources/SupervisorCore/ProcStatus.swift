/// Fields of /proc/PID/status the supervisor reads. The kernel separates a field's values with tabs and
/// spaces alike ("Groups:\t4 1002 1003"): splitting on spaces only lost the first group, so the
/// documented `control_group = adm` failed for a user whose lowest supplementary group it was
/// (issue 25, item 8).
public enum ProcStatus {
    /// The supplementary group ids of the `Groups:` line; empty when there is none.
    public static func supplementaryGroups(_ status: String) -> [UInt32] {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") }) else { return [] }
        return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }
}
