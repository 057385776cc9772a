import Foundation
import Glibc
import Testing

/// A `hyperglass start` under test: a real process, its log in a file, killed by pid when the test ends.
final class SupervisorProcess {
    let process = Process()
    let directory: String
    let logPath: String
    /// The test worker appends "PID started ..." and "PID signal N" lines here.
    let recordPath: String
    let port: Int
    let controlSocket: String
    private var reaped = false

    /// Starts `hyperglass start --bind 127.0.0.1:PORT ARGS...`; `worker` nil means no `--` command.
    /// `launcher` runs first and must exec the supervisor in the same process (`setpriv ...`, `taskset ...`).
    init(_ arguments: [String], worker: [String]? = [], environment: [String: String] = [:], directory: String? = nil,
         launcher: [String] = []) throws {
        self.directory = directory ?? Paths.temporaryDirectory()
        logPath = self.directory + "/supervisor.log"
        recordPath = self.directory + "/workers.log"
        port = freePort()
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Paths.hyperglass)
        controlSocket = self.directory + "/control.sock"
        var argv = ["start", "--bind", "127.0.0.1:\(port)", "--control-socket", controlSocket] + arguments
        if let worker {
            argv += ["--", Paths.testWorker, "--record", recordPath] + worker
        }
        process.arguments = argv
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [Paths.hyperglass] + argv
        }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HYPERGLASS_") && $0.key != "NOTIFY_SOCKET" }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = FileHandle(forWritingAtPath: logPath)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var records: [String] { ((try? String(contentsOfFile: recordPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
    /// Every worker pid that ever started.
    var startedWorkers: [Int32] { records.filter { $0.contains(" started ") }.compactMap { Int32($0.prefix { $0 != " " }) } }
    var liveWorkers: [Int32] { ProcFS.children(of: pid) }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Runs `hyperglassctl --socket <ours> ARGS`, optionally as another user via setpriv.
    func ctl(_ arguments: [String], as user: (uid: Int, gid: Int)? = nil) -> (status: Int32, out: String, err: String) {
        runProgram(Paths.products + "/hyperglassctl", ["--socket", controlSocket] + arguments, as: user)
    }

    /// The supervisor's open file descriptors.
    var openFDs: Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count }

    /// Waits for the supervisor to exit; its status, or nil if it is still running after `timeout`.
    func waitForExit(timeout: Double) -> Int32? {
        guard eventually(timeout: timeout, { !process.isRunning }) else { return nil }
        reaped = true
        return process.terminationStatus
    }

    /// True when no worker that ever started, nor anything in its process group, is alive.
    var noWorkerLeft: Bool {
        let workers = Set(startedWorkers)
        return workers.allSatisfy { !ProcFS.isAlive($0) } && ProcFS.members(ofGroups: workers).isEmpty
    }

    deinit {
        if process.isRunning {
            let workers = liveWorkers
            kill(pid, SIGKILL)
            for worker in workers { kill(-worker, SIGKILL); kill(worker, SIGKILL) }
            process.waitUntilExit()
        }
        for worker in startedWorkers where ProcFS.isAlive(worker) { kill(-worker, SIGKILL); kill(worker, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs a program to completion, with its output captured; bounded by a 30 s kill.
func runProgram(_ path: String, _ arguments: [String], as user: (uid: Int, gid: Int)? = nil) -> (status: Int32, out: String, err: String) {
    let process = Process()
    if let user {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", path] + arguments
    } else {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    do { try process.run() } catch { return (-1, "", "\(error)") }
    let pid = process.processIdentifier
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    if !eventually(timeout: 30, { !process.isRunning }) { kill(pid, SIGKILL) }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}
