import ArgumentParser
import SegmentCore

// Scaffolding: replaced by the module that owns this subcommand.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect")
    func run() throws { throw ValidationError("not available yet") }
}
