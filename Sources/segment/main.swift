// The `segment` command line: a thin front end. Each subcommand lives in its own file and calls one library module.
import ArgumentParser
import Foundation
import SegmentCore

struct Segment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment medical images (NIfTI, PNG) with a Swin-UNet on the CPU, and score segmentations.",
        discussion: "Run `segment SCAN -o MASK` to segment; see `segment help <subcommand>`. Exit codes: 0 success, 1 internal error, 2 usage, 3 invalid input, 4 invalid model, 5 output not writable, 6 some cases failed.",
        version: SegmentVersion.string,
        subcommands: [RunCommand.self, ConvertCommand.self, InspectCommand.self, ScoreCommand.self],
        defaultSubcommand: RunCommand.self)
}

enum SegmentVersion {
    static let string = "0.1.0"
}

/// Runs a command and maps its errors onto the documented exit-code table.
func runMain() -> Never {
    do {
        var command = try Segment.parseAsRoot()
        try command.run()
        exit(ExitStatus.success.rawValue)
    } catch let e as SegmentError {
        FileHandle.standardError.write(Data("segment: error: \(e.description)\n".utf8))
        exit(e.exitCode.rawValue)
    } catch {
        // Help, version and usage errors from ArgumentParser: its own message and code (0 for help, 64 -> 2).
        let code = Segment.exitCode(for: error)
        if code == .success {
            Segment.exit(withError: error)
        }
        FileHandle.standardError.write(Data((Segment.fullMessage(for: error) + "\n").utf8))
        if code.rawValue == 64 || code == .validationFailure { exit(ExitStatus.usage.rawValue) }
        exit(ExitStatus.internalError.rawValue)
    }
}

runMain()
