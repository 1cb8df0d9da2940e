import ArgumentParser
import SegmentCore

// Scaffolding: replaced by the module that owns this subcommand.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert")
    func run() throws { throw ValidationError("not available yet") }
}
