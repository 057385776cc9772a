import SupervisorCore

/// Everything a worker starts ends with it: with a writable v2 hierarchy each worker has a cgroup
/// (`WorkerCgroups`) killed whole when the worker ends, and its exit counts only once the cgroup is
/// empty; without one, children of ours that are not workers are strays (`Strays`).
final class WorkerTrees {
    let cgroups: WorkerCgroups?
    var strays = Strays()
    /// Worker exits held until the worker's cgroup is empty, by the fd of its `cgroup.events`.
    var ending: [Int32: (pid: Int32, status: ExitStatus, directory: String)] = [:]

    let oom = OomWatch()

    init(cgroups: WorkerCgroups?) { self.cgroups = cgroups }
}
