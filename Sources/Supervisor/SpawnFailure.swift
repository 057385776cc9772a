import Glibc
import SupervisorCore

/// Which event a failed spawn is: the supervisor out of descriptors, processes or memory is a resource
/// limit (`spawnLimited`: no crash loop, no growth); anything else (a missing command, EACCES) is the
/// release's failure (`spawnFailed`).
enum SpawnFailure {
    static let resourceErrors: Set<Int32> = [EMFILE, ENFILE, EAGAIN, ENOMEM]

    static func event(slot: Int, generation: Int, errno: Int32, reason: String) -> Event {
        resourceErrors.contains(errno) ? .spawnLimited(slot: slot, generation: generation, reason: reason)
            : .spawnFailed(slot: slot, generation: generation, reason: reason)
    }
}
