// Everything a run is told, as the command line gives it (RunCommand maps flags onto this; tests build it directly).
import Foundation
import SegmentEngine
import SegmentCases
import SegmentCore
import SegmentImaging

/// Which slices of a volume get an overlay picture.
public enum OverlaySlices: Equatable, Sendable, Codable, CustomStringConvertible {
    /// The slice with the most foreground (the middle slice when the mask is empty).
    case auto
    case all
    /// These slice indices, along the input array axis the model slices (0-based).
    case list([Int])

    /// Parses "auto", "all" or "12,40,41".
    public init(parsing text: String) throws {
        switch text {
        case "auto": self = .auto
        case "all": self = .all
        default:
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else {
                throw RunError.usage("--overlay-slices \(text) is not auto, all, or a list of slice indices like 10,20,30.")
            }
            self = .list(parts.map { $0! })
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .all: return "all"
        case .list(let l): return l.map(String.init).joined(separator: ",")
        }
    }
}

/// Codable: a run hands its options to its worker processes.
public struct RunOptions: Sendable, Codable {
    public var input: String
    public var output: String
    public var model: String?
    public var threads: Int = min(ProcessInfo.processInfo.activeProcessorCount, RunOptions.maxThreads)
    public var batch: Int = 4
    /// --precision: fp32 (the default), bf16 or auto (SegmentEngine.Precision).
    public var precision: Precision = .fp32
    /// The memory one case may use for its image and outputs (--memory-limit).
    public var memoryLimit: MemoryBudget = .machineDefault
    /// Segment the cases in this process rather than in a worker process (--in-process: for debuggers and
    /// profilers; a crash then ends the run).
    public var inProcess = false
    public var probabilities: String?
    public var overlay: String?
    public var overlaySlices: OverlaySlices = .auto
    public var report: String?
    /// The run as one self-contained HTML page (RunHTML.swift).
    public var html: String?
    public var continueRun = false
    public var overwrite = false
    public var shard: Shard?
    public var quiet = false
    public var json = false
    public var volume: Int?
    /// PNG mask values; nil: binary (0/255) for a two-class model, the labels otherwise.
    public var pngValues: PNGValues?
    public var isicNames = false
    public var reference: String?
    /// Only this series of a DICOM folder (--series).
    public var series: String?
    /// What a DICOM series' mask is written as (--output-format); nil: by -o's extension, NIfTI into a folder.
    public var outputFormat: OutputFormat?
    /// For the report.
    public var toolVersion = ""
    public var commandLine: [String] = []

    public init(input: String, output: String) { self.input = input; self.output = output }

    /// Checks what can be checked before touching any file.
    public func validate() throws {
        if continueRun && overwrite {
            throw RunError.usage("--continue and --overwrite contradict each other: --continue skips existing outputs, --overwrite replaces them.")
        }
        guard (1...Self.maxThreads).contains(threads) else {
            throw RunError.usage("--threads \(threads) is not in 1...\(Self.maxThreads) (this machine has \(ProcessInfo.processInfo.activeProcessorCount) cores).")
        }
        guard (1...Self.maxBatch).contains(batch) else {
            throw RunError.usage("--batch \(batch) is not in 1...\(Self.maxBatch) (slices per network call; 4 to 16 is fastest on a CPU).")
        }
        if let v = volume, v < 0 { throw RunError.usage("--volume \(v) must be 0 or more (volumes are numbered from 0).") }
        do { _ = try precision.resolved() } catch let e as EngineError { throw RunError.usage(e.message) }
    }

    /// Bounds of --threads and --batch: the engine's buffers grow with both (docs/RELIABILITY.md, "Limits").
    public static let maxThreads = 256
    public static let maxBatch = 64

    var planRequest: PlanRequest {
        var r = PlanRequest(input: input, output: output)
        r.probabilities = probabilities; r.overlayFolder = overlay; r.reference = reference; r.report = report; r.html = html
        r.model = model; r.isicNames = isicNames; r.shard = shard; r.series = series; r.outputFormat = outputFormat
        return r
    }

    var record: OptionsRecord {
        OptionsRecord(threads: threads, batch: batch, probabilities: probabilities, overlay: overlay,
                      overlaySlices: overlay == nil && html == nil ? nil : overlaySlices.description, html: html, continueRun: continueRun,
                      overwrite: overwrite, shard: shard?.description, volume: volume, pngValues: pngValues?.rawValue,
                      isicNames: isicNames, reference: reference, memoryLimitBytes: memoryLimit.bytes,
                      precision: resolvedPrecision.rawValue, kernels: resolvedPrecision.kernels)
    }

    /// The precision the engine runs (validate() has checked that the request resolves).
    var resolvedPrecision: Precision { (try? precision.resolved()) ?? .fp32 }
}
