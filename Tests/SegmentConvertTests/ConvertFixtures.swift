// The fixtures of trainer/fixtures/gen_convert.py (OUTDIR/convert/): the manifest and the reference tensors.
import Foundation
import SegmentConvert
import SegmentFormat
import TestSupport
import XCTest

struct ConvertManifest: Decodable {
    struct Good: Decodable {
        let file: String
        let reference: String
        let config: SwinUNetConfig
        let dropped: Int
        let nesting: String
        let flags: [String]
        let sha256: String
    }
    struct Failure: Decodable {
        let file: String
        let error: String      // the ConvertError case
        let exit: Int32
        let detail: String     // a string the message must contain
    }
    let marker: String
    let checkpoints: [Good]
    let failures: [Failure]

    static func load() throws -> ConvertManifest {
        try JSONDecoder().decode(ConvertManifest.self, from: Data(contentsOf: try TestSupport.fixture("convert/manifest.json")))
    }
}

/// Expected model-file tensors written by the generator: NAME.json lists [name, shape], NAME.f32 the values.
struct ReferenceTensors {
    let tensors: [(name: String, shape: [Int], values: [Float])]

    init(_ name: String) throws {
        struct Index: Decodable { let tensors: [[Entry]] }
        enum Entry: Decodable {
            case name(String), shape([Int])
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .name(s) } else { self = .shape(try c.decode([Int].self)) }
            }
        }
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: try TestSupport.fixture("convert/\(name).json")))
        let raw = try Data(contentsOf: try TestSupport.fixture("convert/\(name).f32"))
        let all = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var at = 0
        tensors = index.tensors.map { pair in
            guard case .name(let n) = pair[0], case .shape(let s) = pair[1] else { fatalError("bad reference index \(name)") }
            let count = s.reduce(1, *)
            defer { at += count }
            return (n, s, Array(all[at..<(at + count)]))
        }
        precondition(at == all.count, "reference \(name): \(all.count) values, index lists \(at)")
    }
}

/// The ConvertError case name of an error ("" for other errors).
func caseName(_ error: Error) -> String {
    guard error is ConvertError else { return "" }
    return Mirror(reflecting: error).children.first?.label ?? ""
}
