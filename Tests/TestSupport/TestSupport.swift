// Shared by the test targets: where the reference fixtures are, how to run the project's Python, temp folders.
import Foundation
import XCTest

public enum TestSupport {
    /// The package root (found from this file's path).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Folder of the reference fixtures made by `make fixtures` (trainer/fixtures/gen_*.py).
    public static var fixtures: URL {
        if let p = ProcessInfo.processInfo.environment["SEGMENT_FIXTURES"], !p.isEmpty { return URL(fileURLWithPath: p) }
        return packageRoot.appendingPathComponent(".fixtures")
    }

    /// A fixture file; fails the test (never skips) when it is missing, saying how to make it.
    public static func fixture(_ relative: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let url = fixtures.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            XCTFail("missing fixture \(url.path): run `make fixtures` (or `make test`)", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        return url
    }

    /// The project's Python (the virtual env made by `make setup`).
    public static var python: String {
        if let p = ProcessInfo.processInfo.environment["SEGMENT_PYTHON"], !p.isEmpty { return p }
        return packageRoot.appendingPathComponent(".venv/bin/python").path
    }

    /// The release `segment` executable next to the test bundle.
    public static var segmentExecutable: URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("segment")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/release/segment")
    }

    /// Runs a program and returns (exit status, stdout, stderr).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           cwd: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        // Drain both pipes while the child runs, so a chatty child cannot block on a full pipe.
        var outData = Data(), errData = Data()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        p.waitUntilExit()
        group.wait()
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// Runs a Python snippet with the project's Python (trainer/ on PYTHONPATH); fails the test on a non-zero exit.
    @discardableResult
    public static func python(_ code: String, _ arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try run(python, ["-c", code] + arguments,
                        environment: ["PYTHONPATH": packageRoot.appendingPathComponent("trainer").path])
        if r.status != 0 { XCTFail("python failed (\(r.status)): \(r.stderr)", file: file, line: line) }
        return r.stdout
    }

    /// A fresh temporary folder, removed at the end of the test.
    public static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("segment-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
