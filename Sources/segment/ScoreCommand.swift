import ArgumentParser
import SegmentCore

// Scaffolding: replaced by the module that owns this subcommand.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "score")
    func run() throws { throw ValidationError("not available yet") }
}
