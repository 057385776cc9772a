/// The configuration releases the pool may still need, by number: the one in effect, the one a reload
/// rolls onto, the one a failed reload falls back to, and any an old-release slot restarts on.
/// The pool owns this one value; the shell asks it what a `spawn` action's release runs.
public struct Releases: Equatable, Sendable {
    /// Release 1 is the configuration the supervisor started with.
    public private(set) var settings: [Int: Settings]
    /// The release new workers run: during a reload the new one, after a failed reload the previous one again.
    public internal(set) var current: Int
    private var highest: Int

    init(initial: Settings) {
        settings = [1: initial]
        current = 1
        highest = 1
    }

    /// After an upgrade: the release in effect keeps its number, with the configuration the new image loaded.
    init(restored number: Int, settings: Settings) {
        self.settings = [number: settings]
        current = number
        highest = number
    }

    /// The number the next reload's release gets.
    public var next: Int { highest + 1 }

    /// The settings in effect: what a reload compares the newly loaded configuration with.
    public var inEffect: Settings {
        guard let inEffect = settings[current] else { preconditionFailure("release \(current) is current but was forgotten") }
        return inEffect
    }

    public subscript(number: Int) -> Settings? { settings[number] }

    /// Records a reload's release, forgetting those nothing uses any more.
    mutating func add(_ number: Int, _ new: Settings, keeping inUse: Set<Int>) {
        settings = settings.filter { inUse.contains($0.key) || $0.key == current }
        settings[number] = new
        highest = max(highest, number)
    }
}
