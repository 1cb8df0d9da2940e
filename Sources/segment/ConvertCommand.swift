// `segment convert CHECKPOINT -o MODEL`: a PyTorch / safetensors Swin-UNet checkpoint to a model file.
import ArgumentParser
import Foundation
import SegmentConvert
import SegmentCore
import SegmentFormat

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Swin-UNet checkpoint (.pth or .safetensors) into a segment model file.",
        discussion: """
        Reads PyTorch .pth files (zip and legacy formats) without running any code from them, and .safetensors. \
        The state_dict may be bare or nested under "model" / "state_dict"; module. and swin_unet. prefixes are \
        stripped and the AdvMIM wrapper's training-only tensors dropped.

        The configuration is read from the tensor shapes. Configuration flags confirm it (a flag the checkpoint \
        contradicts is an error) or supply what the checkpoint cannot tell (--img-size when it has no attn_mask \
        or mask_token).

        Preprocessing defaults are AdvMIM's: gray input, per-volume min-max to [0,1], slices along NIfTI axis 2, \
        image row = axis 0, column = axis 1, nearest-neighbour resizing.

        Exit codes: 0 written; 2 bad flags, or a flag the checkpoint contradicts (such as --dtype f16 for \
        weights beyond its range); 3 unreadable, corrupt or refused checkpoint, or one holding NaN or infinite \
        weights; 5 output exists (without --overwrite) or cannot be written.
        """)

    @Argument(help: "The checkpoint: PyTorch .pth (zip or legacy) or .safetensors; or a model file, to change only its --class-code codes.")
    var checkpoint: String

    @Option(name: .shortAndLong, help: "The model file to write.")
    var output: String

    @Option(help: "Storage type of the weights: f32, f16 or bf16.")
    var dtype: String = DType.f32.rawValue

    @Option(help: "Class names, comma-separated, background first (default background,class1,class2,...).")
    var classes: String?

    @Option(help: ArgumentHelp("Codes of a foreground class for DICOM SEG output (repeatable): LABEL=SCHEME:VALUE:MEANING, e.g. 1=SCT:10200004:Liver; add @SCHEME:VALUE:MEANING for the category of a type segment does not know (docs/DICOM.md).", valueName: "code"))
    var classCode: [String] = []

    @Flag(help: "Replace the output file if it exists.")
    var overwrite = false

    @Flag(help: "Print nothing on success.")
    var quiet = false

    // Configuration: read from the checkpoint; a flag must agree with it.
    @Option(help: ArgumentHelp("Input size in pixels (read from attn_mask / mask_token when the checkpoint has them).", valueName: "n"))
    var imgSize: Int?
    @Option(help: ArgumentHelp("Embedding width (checked against the checkpoint).", valueName: "n"))
    var embedDim: Int?
    @Option(help: ArgumentHelp("Blocks per stage, e.g. 2,2,2,2 (checked against the checkpoint).", valueName: "list"))
    var depths: String?
    @Option(help: ArgumentHelp("Attention heads per stage, e.g. 3,6,12,24 (checked against the checkpoint).", valueName: "list"))
    var heads: String?
    @Option(help: ArgumentHelp("Attention window side (checked against the checkpoint).", valueName: "n"))
    var window: Int?
    @Option(help: ArgumentHelp("Number of classes including background (checked against the checkpoint).", valueName: "n"))
    var numClasses: Int?
    @Option(help: ArgumentHelp("Input channels of the network (checked against the checkpoint).", valueName: "n"))
    var inChans: Int?

    // Preprocessing recorded in the model file (defaults: AdvMIM's).
    @Option(help: "Image channels: \(Preprocessing.Channels.allCases.map(\.rawValue).joined(separator: " or ")).")
    var channels: String = Preprocessing().channels.rawValue
    @Option(help: "Intensity normalisation: \(Preprocessing.Intensity.allCases.map(\.rawValue).joined(separator: ", ")).")
    var intensity: String = Preprocessing().intensity.rawValue
    @Option(parsing: .unconditional, help: ArgumentHelp("Intensity window for --intensity window, e.g. -160,240.", valueName: "lo,hi"))
    var windowRange: String?
    @Option(help: "NIfTI array axis along which slices are taken (0, 1 or 2).")
    var sliceAxis: Int = Preprocessing().sliceAxis
    @Option(help: "NIfTI array axis that is the model's image row.")
    var rowAxis: Int = Preprocessing().rowAxis
    @Option(help: "NIfTI array axis that is the model's image column.")
    var colAxis: Int = Preprocessing().colAxis
    @Option(help: ArgumentHelp("Orientation of the training volumes' axes, e.g. LPS or RAS (default: arrays as they are).", valueName: "code"))
    var orientation: String = Preprocessing().orientation
    @Option(help: "Spline order resizing images to the model grid (0 nearest, as AdvMIM; 1 linear; 3 cubic).")
    var imageOrder: Int = Preprocessing().imageOrder.rawValue
    @Option(help: "Spline order resizing labels back to the input grid (0 nearest).")
    var labelOrder: Int = Preprocessing().labelOrder.rawValue

    @Option(help: ArgumentHelp("Provenance entry KEY=VALUE stored in the model file (repeatable): data, split, seed, iterations ...", valueName: "key=value"))
    var provenance: [String] = []

    /// Every flag checked and turned into the converter's options (usage errors exit 2).
    func options() throws -> ConvertOptions {
        func ints(_ text: String?, _ flag: String) throws -> [Int]? {
            guard let text else { return nil }
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("\(flag) takes positive integers separated by commas, such as 2,2,2,2; got \"\(text)\"")
            }
            return parts.map { $0! }
        }
        func positive(_ v: Int?, _ flag: String) throws -> Int? {
            if let v, v <= 0 { throw ValidationError("\(flag) must be positive, not \(v)") }
            return v
        }
        var o = ConvertOptions()
        o.config = ConfigFlags(imgSize: try positive(imgSize, "--img-size"), embedDim: try positive(embedDim, "--embed-dim"),
                               depths: try ints(depths, "--depths"), numHeads: try ints(heads, "--heads"),
                               windowSize: try positive(window, "--window"), numClasses: try positive(numClasses, "--num-classes"),
                               inChans: try positive(inChans, "--in-chans"))
        guard let d = DType(rawValue: dtype) else { throw ValidationError("--dtype must be f32, f16 or bf16, not \(dtype)") }
        o.dtype = d
        if let classes {
            let names = classes.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard names.allSatisfy({ !$0.isEmpty }), Set(names).count == names.count else {
                throw ValidationError("--classes takes distinct, non-empty names separated by commas, background first; got \"\(classes)\"")
            }
            o.classNames = names
        }

        // The window first (its flag's own syntax), then every value through the one validation model files get.
        var window = (lo: 0.0, hi: 0.0)
        switch (intensity, windowRange) {
        case (Preprocessing.Intensity.window.rawValue, nil):
            throw ValidationError("--intensity window needs --window-range LO,HI (e.g. --window-range -160,240)")
        case (Preprocessing.Intensity.window.rawValue, let text?):
            let parts = text.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2 else { throw ValidationError("--window-range takes LO,HI with LO < HI, such as -160,240; got \"\(text)\"") }
            window = (parts[0], parts[1])
        case (_, nil): break
        case (_, _?): throw ValidationError("--window-range applies only with --intensity window")
        }
        let p: Preprocessing
        switch Preprocessing.validated(channels: channels, intensity: intensity, windowLo: window.lo, windowHi: window.hi,
                                       sliceAxis: sliceAxis, rowAxis: rowAxis, colAxis: colAxis,
                                       orientation: orientation.uppercased(), imageOrder: imageOrder, labelOrder: labelOrder,
                                       inChans: 3) {   // rgb against the checkpoint's own in_chans: Converter
        case .success(let valid): p = valid
        case .failure(let problem): throw ValidationError("\(Self.flag(of: problem.key)) \(problem.reason)")
        }
        o.preprocessing = p

        for entry in provenance {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                throw ValidationError("--provenance takes KEY=VALUE, such as data=ACDC or seed=1337; got \"\(entry)\"")
            }
            let key = String(entry[..<eq])
            guard o.provenance[key] == nil else { throw ValidationError("--provenance gives \(key) twice") }
            o.provenance[key] = String(entry[entry.index(after: eq)...])
        }
        for text in classCode {
            switch ClassCode.parse(text) {
            case .success(let code): o.classCodes.append(code)
            case .failure(let problem): throw ValidationError("--class-code \(problem.reason)")
            }
        }
        o.overwrite = overwrite
        o.converterVersion = "segment \(SegmentVersion.string)"
        return o
    }

    func validate() throws { _ = try options() }

    /// The flag that sets a `preprocessing.*` metadata key: "preprocessing.slice_axis" -> "--slice-axis".
    static func flag(of key: String) -> String {
        let name = key.split(separator: ".").last.map(String.init) ?? key
        return name.hasPrefix("window_") ? "--window-range" : "--" + name.replacingOccurrences(of: "_", with: "-")
    }

    func run() throws {
        if Converter.isModelFile(checkpoint) {
            // A model file in: only its class codes change; a flag that would change anything else is refused.
            guard classes == nil, provenance.isEmpty, dtype == DType.f32.rawValue, !classCode.isEmpty else {
                throw ValidationError("\(checkpoint) is a model file: convert re-writes one only to set --class-code (give at least one; --classes, --provenance and --dtype need the checkpoint)")
            }
            let metadata = try Converter.recode(model: checkpoint, to: output, classCodes: try options().classCodes, overwrite: overwrite)
            if !quiet {
                FileHandle.standardError.write(Data("segment convert: wrote \(output) with the tensors of \(checkpoint) and class codes \(metadata.classCodes.map { "\($0.label)=\($0.type)" }.joined(separator: ", "))\n".utf8))
            }
            return
        }
        let report = try Converter.convert(checkpoint: checkpoint, to: output, options: try options())
        guard !quiet else { return }
        let c = report.metadata.config
        var lines = ["read \(checkpoint) (\(report.format.rawValue)\(report.nesting.isEmpty ? "" : ", state_dict under \"\(report.nesting)\""), sha256 \(report.sha256))"]
        if !report.dropped.isEmpty {
            lines.append("dropped \(report.dropped.count) training-only tensors (AdvMIM wrapper: mask_token, decoder, projection/prediction heads, class selectors)")
        }
        let millions = String(format: "%.1f", Double(report.parameterCount) / 1e6)
        lines.append("Swin-UNet img_size \(c.imgSize), patch \(c.patchSize), in_chans \(c.inChans), embed_dim \(c.embedDim), depths \(c.depths.map(String.init).joined(separator: ",")), heads \(c.numHeads.map(String.init).joined(separator: ",")), window \(c.windowSize), mlp_ratio \(c.mlpRatio), \(c.numClasses) classes (\(report.metadata.classNames.joined(separator: ", ")))")
        lines.append("wrote \(output): \(report.tensorCount) tensors, \(millions) M parameters, \(dtype)")
        let pre = report.metadata.preprocessing
        lines.append(pre.channels == .gray
            ? "input: gray images (RGB pictures are turned into their luma). A checkpoint trained on colour images (dermoscopy, photographs) needs --channels rgb"
            : "input: RGB images (gray pictures are repeated in R, G and B)")
        FileHandle.standardError.write(Data(lines.map { "segment convert: \($0)\n" }.joined().utf8))
    }
}
