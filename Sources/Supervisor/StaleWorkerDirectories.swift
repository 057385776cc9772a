import Glibc

/// Private `workers.XXXXXX` directories left in the runtime directory by a supervisor that ended
/// abnormally (SIGKILL, a crash): nothing removed them, and one more appeared with every such end
/// (issue 25, item 14). At start, ours are removed when their owner is gone, and only then:
/// - ours: a directory named `workers.` + 6 characters (mkdtemp's), owned by our user, mode 0700, holding
///   only sockets;
/// - owner gone: nobody holds its lock (a running supervisor keeps `flock` on its own, `lock(_:)`), and no
///   socket in it is bound (/proc/net/unix), which also covers a running supervisor of an older version.
enum StaleWorkerDirectories {
    static let prefix = "workers."

    /// Held for the supervisor's life: the directory's fd stays open, and with it the lock.
    static func lock(_ directory: SocketDirectory) {
        _ = flock(directory.fd, LOCK_EX | LOCK_NB)
    }

    /// Removes the stale ones in `parent`; the names removed.
    @discardableResult
    static func clean(in parent: SocketDirectory, log: Log) -> [String] {
        guard let listing = fdopendir(dup(parent.fd)) else { return [] }
        var candidates: [String] = []
        while let entry = readdir(listing) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(prefix), name.utf8.count == prefix.utf8.count + 6 { candidates.append(name) }
        }
        closedir(listing)
        guard !candidates.isEmpty else { return [] }
        let bound = boundSocketPaths()
        var removed: [String] = []
        for name in candidates where removeIfStale(name, in: parent, bound: bound) { removed.append(name) }
        if !removed.isEmpty {
            log(.notice, "removed \(removed.count) worker socket director\(removed.count == 1 ? "y" : "ies") left in \(parent.path) by a supervisor that ended abnormally: \(removed.joined(separator: ", "))")
        }
        return removed
    }

    private static func removeIfStale(_ name: String, in parent: SocketDirectory, bound: [String]) -> Bool {
        var info = stat()
        guard fstatat(parent.fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFDIR,
              info.st_uid == geteuid(), info.st_mode & 0o7777 == 0o700 else { return false }
        let fd = openat(parent.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // A running supervisor holds the lock; ours is released only at its end.
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        let path = parent.path(of: name) + "/"
        guard !bound.contains(where: { $0.hasPrefix(path) }) else { return false }
        guard let listing = fdopendir(dup(fd)) else { return false }
        var entries: [String] = []
        var onlySockets = true
        while let entry = readdir(listing) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard entryName != ".", entryName != ".." else { continue }
            var entryInfo = stat()
            if fstatat(fd, entryName, &entryInfo, AT_SYMLINK_NOFOLLOW) != 0 || entryInfo.st_mode & S_IFMT != S_IFSOCK { onlySockets = false }
            entries.append(entryName)
        }
        closedir(listing)
        guard onlySockets else { return false }
        for entry in entries { _ = unlinkat(fd, entry, 0) }
        return unlinkat(parent.fd, name, AT_REMOVEDIR) == 0
    }

    /// Paths of the Unix sockets bound right now, from /proc/net/unix (the last column, when it has one).
    private static func boundSocketPaths() -> [String] {
        guard let text = try? Sys.readFile("/proc/net/unix", limit: 16 << 20) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 8, fields[7].hasPrefix("/") else { return nil }
            return String(fields[7])
        }
    }
}
