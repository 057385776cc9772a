import CHyperglass
import Glibc

/// A directory we create socket files in, held open and checked once: owned by us or root and not
/// writable by anyone else (a sticky, root-owned one like /tmp is accepted: others can neither remove
/// nor rename what we create there). Every socket is then chowned, tested and removed through the
/// open directory (the *at calls with AT_SYMLINK_NOFOLLOW, /proc/self/fd/N/NAME), and its file is born
/// with its final mode: no chmod or chown ever follows a path, so a symlink swapped in cannot redirect
/// one onto a file of someone else's choosing. (bind() itself takes the real path, checked afterwards.)
final class SocketDirectory {
    let path: String
    let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { Sys.close(fd) }

    /// Opens `path` (created with `createMode` when missing and a mode is given) and checks it is safe.
    static func open(_ path: String, createMode: mode_t?, purpose: String) throws(SystemError) -> SocketDirectory {
        let directory = path.isEmpty ? "/" : path
        let created = createMode.map { mkdir(directory, $0) == 0 } ?? false
        let fd = try Sys.check("open \(purpose)'s directory \(directory) (create it, or choose another path)") {
            Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        let opened = SocketDirectory(path: directory, fd: fd)
        var info = stat()
        if created, let createMode, fstat(fd, &info) == 0, info.st_uid == geteuid() {
            // mkdir applied the umask; the mode asked for is the mode meant (through the fd: no path is followed).
            _ = fchmod(fd, createMode)
        }
        try opened.check(purpose: purpose)
        return opened
    }

    private func check(purpose: String) throws(SystemError) {
        var info = stat()
        try Sys.check("fstat \(path)") { fstat(fd, &info) }
        let me = geteuid()
        if info.st_uid != me && info.st_uid != 0 {
            throw SystemError(operation: "refusing \(path) for \(purpose): it is owned by uid \(info.st_uid), not by us (uid \(me)) or root, so its owner could swap our socket for a link; remove it, or choose a directory of ours", errno: EPERM)
        }
        let writableByOthers = info.st_mode & 0o022 != 0
        let stickyRoot = info.st_mode & mode_t(S_ISVTX) != 0 && info.st_uid == 0
        if writableByOthers && !stickyRoot {
            throw SystemError(operation: "refusing \(path) for \(purpose): it is writable by other users (mode \(String(info.st_mode & 0o7777, radix: 8))); run 'chmod go-w \(path)' or choose another directory", errno: EPERM)
        }
    }

    /// The path the kernel resolves through our open directory, never through `path` again.
    func anchored(_ name: String) -> String { "/proc/self/fd/\(fd)/\(name)" }

    func path(of name: String) -> String { path == "/" ? "/\(name)" : "\(path)/\(name)" }

    /// A socket of `type` bound at `name`, its file created with `mode` and, given a group, chowned to it.
    func bind(_ name: String, type: Int32, mode: mode_t, group: UInt32? = nil, backlog: Int32 = 64, purpose: String) throws(SystemError) -> Int32 {
        try removeStaleSocket(name, purpose: purpose)
        // Bound by its real path, so getsockname() tells a worker (gunicorn unlinks it at exit) and `ss -x` where it is.
        let socket = try Sys.check("bind \(purpose) at \(path(of: name))") { hg_bind_unix(path(of: name), type, UInt32(mode), backlog) }
        // The file must now be in the directory we checked (not elsewhere through a renamed ancestor), and ours.
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFSOCK, info.st_uid == geteuid() else {
            Sys.close(socket)
            throw SystemError(operation: "bind \(purpose) at \(path(of: name)): the socket did not appear in the directory checked; was \(path) moved?", errno: EXDEV)
        }
        if let group {
            do {
                try Sys.check("give \(path(of: name)) to group \(group)") { fchownat(fd, name, UInt32.max, group, AT_SYMLINK_NOFOLLOW) }
            } catch {
                Sys.close(socket)
                remove(name)
                throw error
            }
        }
        return socket
    }

    /// A socket file left by a crashed process is replaced; one a live process serves, or anything else, is not.
    func removeStaleSocket(_ name: String, purpose: String) throws(SystemError) {
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw SystemError(operation: "bind \(purpose) at \(path(of: name)): a file that is not a socket is in the way; remove it or choose another path", errno: EEXIST)
        }
        guard hg_unix_socket_alive(anchored(name)) == 0 else {
            throw SystemError(operation: "bind \(purpose) at \(path(of: name)): another process is listening there", errno: EADDRINUSE)
        }
        remove(name)
    }

    func remove(_ name: String) { _ = unlinkat(fd, name, 0) }

    /// A new directory inside this one, mode 0700 with an unpredictable name (mkdtemp), for sockets only we may reach.
    func makePrivate(prefix: String) throws(SystemError) -> SocketDirectory {
        var template = Array(anchored("\(prefix).XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        guard made else { throw SystemError(operation: "create a private directory in \(path)", errno: errno) }
        let name = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! }).split(separator: "/").last.map(String.init) ?? prefix
        let fd = try Sys.check("open \(path(of: name))") { openat(self.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        return SocketDirectory(path: path(of: name), fd: fd)
    }

    /// Removes this directory's entries (sockets we made) and the directory itself, from its parent `in`.
    func removeAll(from parent: SocketDirectory) {
        guard let entries = fdopendir(dup(fd)) else { return }
        var names: [String] = []
        while let entry = readdir(entries) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(entries)
        names.forEach(remove)
        if let name = path.split(separator: "/").last { _ = unlinkat(parent.fd, String(name), AT_REMOVEDIR) }
    }
}
