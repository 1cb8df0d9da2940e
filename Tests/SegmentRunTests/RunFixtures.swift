// Helpers of the run tests: model files from gen_run.py's tensor sets, the CLI, and reading masks back.
import Foundation
import SegmentFormat
import SegmentImaging
import TestSupport
import XCTest

enum RunFixtures {
    /// Writes fixture model `name` (band, random, rgb: see trainer/fixtures/gen_run.py) into `dir` with this
    /// preprocessing, and returns its path.
    static func model(_ name: String, _ preprocessing: Preprocessing, in dir: URL, file: String? = nil) throws -> String {
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: TestSupport.fixture("run/\(name).json"))) as! [String: Any]
        let blob = try Data(contentsOf: TestSupport.fixture("run/\(name).bin"))
        let c = index["config"] as! [String: Any]
        let config = SwinUNetConfig(imgSize: c["img_size"] as! Int, patchSize: c["patch_size"] as! Int,
                                    inChans: c["in_chans"] as! Int, numClasses: c["num_classes"] as! Int,
                                    embedDim: c["embed_dim"] as! Int, depths: c["depths"] as! [Int],
                                    numHeads: c["num_heads"] as! [Int], windowSize: c["window_size"] as! Int,
                                    mlpRatio: c["mlp_ratio"] as! Double)
        let names = ["background"] + (1..<config.numClasses).map { "class\($0)" }
        var writer = ModelFileWriter(metadata: ModelMetadata(config: config, preprocessing: preprocessing, classNames: names,
                                                             converterVersion: "run-tests", provenance: ["fixture": name]))
        for t in index["tensors"] as! [[String: Any]] {
            let shape = t["shape"] as! [Int], offset = t["offset"] as! Int
            let count = shape.reduce(1, *)
            let values = blob.subdata(in: offset ..< offset + 4 * count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            try writer.add(t["name"] as! String, shape: shape, values: values, dtype: .f32)
        }
        let path = dir.appendingPathComponent(file ?? "\(name).segm").path
        try writer.write(to: path)
        return path
    }

    /// AdvMIM's convention (slices along k, row i, column j), minmax, order 0 both ways, volumes mapped to RAS.
    static var ras: Preprocessing {
        var p = Preprocessing()
        p.orientation = "RAS"
        return p
    }

    /// The same with no reorientation: the input array is used as stored.
    static var asStored: Preprocessing { Preprocessing() }

    /// The RGB picture model's preprocessing: RGB, values as read ([0, 1]).
    static var rgbPictures: Preprocessing {
        var p = Preprocessing()
        p.channels = .rgb
        p.intensity = .none
        return p
    }

    /// Runs `segment ARGS`.
    @discardableResult
    static func segment(_ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        try TestSupport.run(TestSupport.segmentExecutable.path, args, environment: environment)
    }

    /// A NIfTI label volume as read by SegmentImaging: (shape, labels X fastest).
    static func labels(_ path: String) throws -> (shape: [Int], values: [UInt8]) {
        let v = try NIfTIVolume.read(path)
        return (v.shape, try v.labels(as: UInt8.self))
    }

    static func floats(_ path: String) throws -> [Float] { try NIfTIVolume.read(path).floats() }

    /// A PNG mask's values (0...255) as stored.
    static func pngValues(_ path: String) throws -> (width: Int, height: Int, values: [UInt8]) {
        let p = try PNGImage.read(path)
        XCTAssertEqual(p.channels, 1, "\(path) must be single-channel")
        return (p.width, p.height, p.pixels.map { UInt8(($0 * 255).rounded()) })
    }

    /// Copies fixture `run/NAME` to `dir/as`.
    @discardableResult
    static func copy(_ name: String, to dir: URL, as target: String? = nil) throws -> String {
        let dst = dir.appendingPathComponent(target ?? name).path
        try FileManager.default.copyItem(atPath: TestSupport.fixture("run/\(name)").path, toPath: dst)
        return dst
    }

    /// Parses status lines "segment: case=NAME status=... key=value ..." (values possibly JSON-quoted).
    static func statusLines(_ stderr: String) -> [[String: String]] {
        stderr.split(separator: "\n").filter { $0.hasPrefix("segment: case=") }.map { line in
            var fields: [String: String] = [:]
            var rest = Substring(line.dropFirst("segment: ".count))
            while !rest.isEmpty {
                let eq = rest.firstIndex(of: "=")!
                let key = String(rest[..<eq])
                rest = rest[rest.index(after: eq)...]
                var value: String
                if rest.first == "\"" {
                    var i = rest.index(after: rest.startIndex), escaped = false
                    while escaped || rest[i] != "\"" { escaped = !escaped && rest[i] == "\\"; i = rest.index(after: i) }
                    let quoted = String(rest[...i])
                    value = (try? JSONDecoder().decode(String.self, from: Data(quoted.utf8))) ?? quoted
                    rest = rest[rest.index(after: i)...]
                } else {
                    let end = rest.firstIndex(of: " ") ?? rest.endIndex
                    value = String(rest[..<end])
                    rest = rest[end...]
                }
                fields[key] = value
                rest = rest.drop { $0 == " " }
            }
            return fields
        }
    }
}
