// The run report (`--report run.json`, or stdout with `--json`): tool version, model checksum and metadata, options,
// and per case: input, output, shape, spacing, labels found with voxel counts and volumes, time, status.
// Keys are snake_case and sorted, so two reports of the same run differ only in times. docs/RUN.md shows an example.
import Foundation
import SegmentDICOM
import SegmentCases
import SegmentCore
import SegmentFormat
import SegmentMetrics

extension CaseRecord {
    /// The case's status line: slices and output of a good case, exit code and error of a failed one.
    public var statusLine: StatusLine {
        var fields: [(String, String)] = []
        if let s = slices, status == .ok { fields.append(("slices", String(s))) }
        if let code = exitCode, status == .failed { fields.append(("exit", String(code))) }
        if status != .failed { fields.append(("out", output)) }
        if status == .skipped { fields.append(("reason", "exists")) }
        if let e = error { fields.append(("error", e)) }
        return StatusLine(name: name, status: status, seconds: timeSeconds, fields: fields)
    }
}

/// One label present in a mask.
public struct LabelRecord: Codable, Equatable, Sendable {
    public var label: Int
    public var name: String
    public var voxels: Int
    /// voxels x voxel volume in millilitres (mm^3 / 1000); nil for PNG images (no physical spacing).
    public var volumeMl: Double?
    /// Mean of the input's values over the label's voxels, on the input grid (scaled as nibabel's get_fdata: HU for
    /// CT); for gray pictures their pixel values. Absent for colour pictures (see meanRGB) and in older reports.
    public var meanIntensity: Double?
    /// For colour pictures: the mean red, green and blue values over the label's pixels.
    public var meanRGB: [Double]?

    public init(label: Int, name: String, voxels: Int, volumeMl: Double?, meanIntensity: Double? = nil, meanRGB: [Double]? = nil) {
        self.label = label; self.name = name; self.voxels = voxels; self.volumeMl = volumeMl
        self.meanIntensity = meanIntensity; self.meanRGB = meanRGB
    }

    enum CodingKeys: String, CodingKey {
        case label, name, voxels, volumeMl = "volume_ml", meanIntensity = "mean_intensity", meanRGB = "mean_rgb"
    }
}

public struct CaseRecord: Codable, Equatable, Sendable {
    public var name: String
    public var input: String
    public var output: String
    public var status: CaseStatus
    /// The error of a failed case (the same text as on stderr) and its exit code.
    public var error: String?
    public var exitCode: Int?
    /// Array shape of the input image: NIfTI (X, Y, Z) as nibabel shows it, PNG (height, width).
    public var shape: [Int]?
    /// Voxel size in mm along the array axes (NIfTI only).
    public var spacing: [Double]?
    /// Slices that went through the network.
    public var slices: Int?
    /// Every label present in the mask, background included, in label order.
    public var labels: [LabelRecord]?
    public var timeSeconds: Double
    public var probabilities: String?
    public var overlays: [String]?
    public var reference: String?
    /// What was done to the input that the user may not expect (a colour picture given to a gray model, say).
    public var warnings: [String]?
    /// The DICOM series of the case, and the DICOM SEG written (its UIDs, frames and segments).
    public var series: SeriesRecord?
    public var seg: SegSummary?

    public init(name: String, input: String, output: String, status: CaseStatus, timeSeconds: Double = 0) {
        self.name = name; self.input = input; self.output = output; self.status = status; self.timeSeconds = timeSeconds
    }

    enum CodingKeys: String, CodingKey {
        case name, input, output, status, error, shape, spacing, slices, labels, probabilities, overlays, reference
        case warnings, series, seg
        case exitCode = "exit_code", timeSeconds = "time_s"
    }
}

/// A DICOM series as the run report names it.
public struct SeriesRecord: Codable, Equatable, Sendable {
    public var seriesInstanceUID: String
    public var studyInstanceUID: String?
    public var frameOfReferenceUID: String?
    public var description: String?
    public var modality: String?
    public var folder: String
    public var files: Int
    public var frames: Int
    public var transferSyntaxes: [String]

    init(_ s: DICOMSeries) {
        seriesInstanceUID = s.seriesInstanceUID; studyInstanceUID = s.studyInstanceUID
        frameOfReferenceUID = s.frameOfReferenceUID; description = s.description; modality = s.modality
        folder = s.folder; files = s.files.count; frames = s.frames.count; transferSyntaxes = s.transferSyntaxes
    }

    enum CodingKeys: String, CodingKey {
        case description, modality, folder, files, frames
        case seriesInstanceUID = "series_instance_uid", studyInstanceUID = "study_instance_uid"
        case frameOfReferenceUID = "frame_of_reference_uid", transferSyntaxes = "transfer_syntaxes"
    }
}

public struct RunSummary: Codable, Equatable, Sendable {
    /// Images found in the input (before sharding).
    public var discovered: Int
    /// Cases of this run (after sharding), and how each ended.
    public var cases: Int
    public var ok: Int
    public var skipped: Int
    public var failed: Int
    public var shard: String?

    public init(discovered: Int, records: [CaseRecord], shard: Shard?) {
        self.discovered = discovered
        cases = records.count
        ok = records.filter { $0.status == .ok }.count
        skipped = records.filter { $0.status == .skipped }.count
        failed = records.filter { $0.status == .failed }.count
        self.shard = shard?.description
    }
}

/// The model as the report records it (metadata in snake_case, as the model file stores it).
public struct ModelRecord: Codable, Equatable, Sendable {
    public var path: String
    public var checksum: String
    public var fileSize: Int
    public var architecture = "swin-unet"
    public var config: ConfigRecord
    public var preprocessing: PreprocessingRecord
    public var classNames: [String]
    public var sourceSHA256: String
    public var converterVersion: String
    public var provenance: [String: String]

    enum CodingKeys: String, CodingKey {
        case path, checksum, architecture, config, preprocessing, provenance
        case fileSize = "file_size", classNames = "class_names", sourceSHA256 = "source_sha256", converterVersion = "converter_version"
    }

    public struct ConfigRecord: Codable, Equatable, Sendable {
        var imgSize, patchSize, inChans, numClasses, embedDim, windowSize: Int
        var depths, numHeads: [Int]
        var mlpRatio: Double
        public init(_ c: SwinUNetConfig) {
            imgSize = c.imgSize; patchSize = c.patchSize; inChans = c.inChans; numClasses = c.numClasses
            embedDim = c.embedDim; windowSize = c.windowSize; depths = c.depths; numHeads = c.numHeads; mlpRatio = c.mlpRatio
        }
        enum CodingKeys: String, CodingKey {
            case depths
            case imgSize = "img_size", patchSize = "patch_size", inChans = "in_chans", numClasses = "num_classes"
            case embedDim = "embed_dim", windowSize = "window_size", numHeads = "num_heads", mlpRatio = "mlp_ratio"
        }
    }

    public struct PreprocessingRecord: Codable, Equatable, Sendable {
        var channels, intensity, orientation: String
        var windowLo, windowHi: Double
        var sliceAxis, rowAxis, colAxis, imageOrder, labelOrder: Int
        public init(_ p: Preprocessing) {
            channels = p.channels.rawValue; intensity = p.intensity.rawValue; orientation = p.orientation; windowLo = p.windowLo
            windowHi = p.windowHi; sliceAxis = p.sliceAxis; rowAxis = p.rowAxis; colAxis = p.colAxis
            imageOrder = p.imageOrder.rawValue; labelOrder = p.labelOrder.rawValue
        }
        enum CodingKeys: String, CodingKey {
            case channels, intensity, orientation
            case windowLo = "window_lo", windowHi = "window_hi", sliceAxis = "slice_axis", rowAxis = "row_axis"
            case colAxis = "col_axis", imageOrder = "image_order", labelOrder = "label_order"
        }
    }
}

/// The options of the run, as given (paths as typed).
public struct OptionsRecord: Codable, Equatable, Sendable {
    public var threads: Int
    public var batch: Int
    public var probabilities: String?
    public var overlay: String?
    public var overlaySlices: String?
    /// --html (absent when not given).
    public var html: String?
    public var continueRun: Bool
    public var overwrite: Bool
    public var shard: String?
    public var volume: Int?
    public var pngValues: String?
    public var isicNames: Bool
    public var reference: String?
    /// --memory-limit in bytes (absent in reports of versions before it existed).
    public var memoryLimitBytes: Int?
    /// The engine's arithmetic precision, fp32 or bf16 (--precision resolved on this CPU; absent in reports of
    /// versions before it existed: fp32), and the kernels that ran it (avx512, avx2, portable-c, avx512-bf16, amx-bf16).
    public var precision: String?
    public var kernels: String?

    enum CodingKeys: String, CodingKey {
        case threads, batch, probabilities, overlay, overwrite, shard, volume, reference, precision, kernels, html
        case memoryLimitBytes = "memory_limit_bytes"
        case overlaySlices = "overlay_slices", continueRun = "continue", pngValues = "png_values", isicNames = "isic_names"
    }
}

public struct RunReport: Codable, Equatable, Sendable {
    public var format = "segment-run-report"
    public var formatVersion = 1
    public var tool: String
    public var toolVersion: String
    public var commandLine: [String]
    /// The folder relative paths (as typed, in command_line, options and cases) are relative to.
    public var workingDirectory: String
    public var started: String          // ISO 8601, UTC
    public var wallTimeSeconds: Double
    public var exitCode: Int
    public var model: ModelRecord
    public var options: OptionsRecord
    public var summary: RunSummary
    public var cases: [CaseRecord]
    /// With --ref: the scores of the segmented cases against their references, as `segment score --json` writes
    /// them (skipped and failed cases are not scored).
    public var scores: ScoreReport?

    enum CodingKeys: String, CodingKey {
        case format, tool, started, model, options, summary, cases, scores
        case formatVersion = "format_version", toolVersion = "tool_version", commandLine = "command_line"
        case workingDirectory = "working_directory"
        case wallTimeSeconds = "wall_time_s", exitCode = "exit_code"
    }

    /// Pretty-printed JSON with sorted keys; NaN and infinities are written as the strings "nan", "inf", "-inf"
    /// (as `segment score` writes them).
    public func json() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var data = try e.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    public static func decode(_ data: Data) throws -> RunReport {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try d.decode(RunReport.self, from: data)
    }
}
