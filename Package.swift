// swift-tools-version:6.0
import PackageDescription

// hyperglass supervisor: a systemd-first process supervisor for web-application workers.
// No third-party packages: the toolchain, Glibc, our C target and libsystemd.
let package = Package(
    name: "hyperglass",
    products: [
        .executable(name: "hyperglass", targets: ["Supervisor"]),
        .executable(name: "hyperglassctl", targets: ["Control"]),
        .executable(name: "hyperglass-worker", targets: ["Worker"]),
        .library(name: "WorkerKit", targets: ["WorkerKit"]),
    ],
    targets: [
        // libsystemd's sd-daemon API (sd_notify), from Debian's libsystemd-dev.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // The Linux calls Swift's Glibc module lacks, and the fork/exec path (C only between fork and exec).
        .target(name: "CHyperglass"),
        // The supervisor's signals, blocked by a constructor before the Swift runtime starts (only it links this).
        .target(name: "CSupervisorSignals"),
        // The one door to the kernel for every program and WorkerKit: EINTR retried in one place, EBADF a bug.
        .target(name: "SystemCalls", dependencies: ["CHyperglass"]),
        // The pure policy core: config, pool state machine, backoff. No syscalls, no clock. It decides every
        // control request, so it speaks the protocol's values (worker counts, ready shares); both are pure.
        .target(name: "SupervisorCore", dependencies: ["ControlProtocol"]),
        // The control protocol shared by the supervisor and hyperglassctl: JSON lines over a Unix socket.
        .target(name: "ControlProtocol"),
        // The worker side of the protocol (inherited sockets, readiness, watchdog, drain), for any Swift server.
        .target(name: "WorkerKit", dependencies: ["SystemCalls", "CHyperglass"]),
        .executableTarget(
            name: "Supervisor",
            dependencies: ["SupervisorCore", "ControlProtocol", "SystemCalls", "CHyperglass", "CSupervisorSignals", "CSystemd"]
        ),
        .executableTarget(name: "Control", dependencies: ["ControlProtocol", "SystemCalls", "CHyperglass"]),
        .executableTarget(name: "Worker", dependencies: ["WorkerKit", "SystemCalls", "CHyperglass"]),
        .testTarget(name: "SupervisorCoreTests", dependencies: ["SupervisorCore", "ControlProtocol"]),
        // The shell's pure helpers (arguments, status report and table, systemd time spans), tested in-process.
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "SupervisorCore", "ControlProtocol"]),
        .testTarget(name: "IntegrationTests", dependencies: [], exclude: ["Fixtures", "Hostile"]),
        .testTarget(name: "WorkerTests", dependencies: ["WorkerKit", "Worker", "SystemCalls", "CHyperglass"], exclude: ["drain_client.py"]),
    ],
    swiftLanguageModes: [.v6]
)
