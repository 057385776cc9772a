import Glibc

/// An errno value with the C library's words for it, as swift-system's `Errno`.
public struct Errno: Error, Equatable, CustomStringConvertible, Sendable {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }
    /// The calling thread's errno, read right after a failed call.
    public static var current: Errno { Errno(Glibc.errno) }
    public var description: String { String(cString: strerror(rawValue)) }
}

/// A failed system call, with what we were doing, in words an operator can act on.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32

    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}
