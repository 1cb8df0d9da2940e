import ArgumentParser
import SegmentCore

// Scaffolding: replaced by the module that owns this subcommand.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run")
    func run() throws { throw ValidationError("not available yet") }
}
