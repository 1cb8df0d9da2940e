import ArgumentParser
import Foundation
import SegmentCore
import SegmentFormat

/// `segment inspect MODEL [--json]`: validates a model file completely and shows what it holds.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Validate a model file and show its metadata, tensors and checksum.",
        discussion: "Exits 0 when the file is valid, 4 when it is not (the message says what is wrong and what to do).")

    @Argument(help: "The model file (.segm).")
    var model: String

    @Flag(name: .long, help: "Print machine-readable JSON to stdout.")
    var json = false

    func run() throws {
        let inspection = ModelInspection(try ModelFile.open(model))
        print(json ? try inspection.json() : inspection.text, terminator: json ? "\n" : "")
    }
}
