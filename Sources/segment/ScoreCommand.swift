// `segment score`: predicted label images against references. A thin front end over SegmentMetrics
// (definitions and policy: docs/SCORING.md).
import ArgumentParser
import Foundation
import SegmentCases
import SegmentCore
import SegmentFormat
import SegmentImaging
import SegmentMetrics

extension ScoringPolicy.Mode: ExpressibleByArgument {}
extension ScoringPolicy.WorstDistance: ExpressibleByArgument {}

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score predicted label images against references: Dice, IoU, TP/FP/FN, HD, HD95, ASSD per label.",
        discussion: """
        Files or folders, NIfTI (.nii, .nii.gz) or PNG. In folders, cases are matched by name: the file name without \
        .nii.gz / .nii / .png and without a trailing _segmentation (ISIC), so CASE.nii.gz matches CASE.nii. Every \
        reference is a case; a missing prediction fails that case unless --missing-as-empty.
        Distances are in mm from the reference header's spacing (pixels for PNG; voxels with --compat swin-unet).
        Empty masks (default policy): both empty -> NaN, left out of the means and counted; one empty -> Dice 0 and \
        infinite distances, left out of the distance means and counted (or the image diagonal with \
        --worst-distance diagonal). See docs/SCORING.md.
        A table goes to stdout; --json writes nnU-Net's summary.json layout (extended), --csv a row per case and label, \
        --html one self-contained page (docs/SCORING.md, "HTML report").
        Progress goes to stderr: a bar on a terminal, else one line per case: \
        `segment: score case=NAME status=ok|failed time=SECONDSs [exit=CODE error="..."]` (values with spaces or quotes JSON-quoted).
        Exit: 0 all scored, 3 nothing scored (or invalid input), 6 some cases failed (the report lists them), 2 usage.
        """)

    @Option(name: .customLong("pred"), help: "Prediction label image, or folder of them.")
    var prediction: String?

    @Option(name: .customLong("ref"), help: "Reference label image, or folder of them.")
    var reference: String?

    @Option(help: ArgumentHelp("CSV file of explicit pairs (header: prediction,reference[,case]; paths relative to the file).",
                               valueName: "file.csv"))
    var pairs: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Combine shard reports (JSON of --json) into one; means recomputed.",
                                                         valueName: "report.json"))
    var merge: [String] = []

    @Option(help: ArgumentHelp("Labels to score, e.g. 1,2,3 (default: the model's classes with --model, else every label present).",
                               valueName: "list"))
    var labels: String?

    @Option(help: ArgumentHelp("Also score unions of labels as one class each (nnU-Net's regions), optionally named, e.g. liver=1+2 or 1+2,2+3.",
                               valueName: "regions"))
    var regions: String?

    @Option(help: ArgumentHelp("Also report the normalized surface Dice at these tolerances in mm (pixels for PNG), e.g. 1,2: "
                               + "keys nsd_1mm, nsd_2mm per class (DeepMind surface-distance's definition).",
                               valueName: "mm,..."))
    var nsd: String?

    @Option(name: .customLong("ignore-label"),
            help: ArgumentHelp("Leave out every voxel where the reference has this label, from every class (nnU-Net's ignore label).",
                               valueName: "label"))
    var ignoreLabel: Int?

    @Option(help: "Model file whose class names (and labels 1..classes-1) the report uses.")
    var model: String?

    @Option(help: ArgumentHelp("Voxel spacing in mm overriding the reference header, one value per axis, e.g. 0.8,0.8,2.5.",
                               valueName: "x,y,z"))
    var spacing: String?

    @Option(help: ArgumentHelp("Scoring rules: default, or swin-unet (HuCaoFighting/Swin-Unet: HD95 in voxels, its empty-mask rules).",
                               valueName: "mode"))
    var compat: ScoringPolicy.Mode = .standard

    @Option(name: .customLong("worst-distance"),
            help: "Distances when exactly one mask is empty: infinite (left out of the means, counted) or diagonal (the image diagonal).")
    var worstDistance: ScoringPolicy.WorstDistance = .infinite

    @Option(help: ArgumentHelp("Write the report as JSON (nnU-Net summary.json layout, extended).", valueName: "summary.json"))
    var json: String?

    @Option(help: ArgumentHelp("Write one row per case and label as CSV.", valueName: "cases.csv"))
    var csv: String?

    @Option(help: ArgumentHelp("Write the report as one self-contained HTML page: per-class summary and box plots, the cases worst first (sortable) with their outlines.",
                               valueName: "report.html"))
    var html: String?

    @Option(help: ArgumentHelp("Folder of the cases' images (matched by case name), drawn under the outlines in --html.",
                               valueName: "dir"))
    var images: String?

    @Option(help: "Cases scored in parallel, 1...256 (default: all cores, at most 256).")
    var threads: Int?

    @Option(name: .customLong("memory-limit"),
            help: "Memory one image may use, e.g. 8G: a larger one fails its case (exit 3) before it is read (default: half of the machine's memory or of ulimit -v).")
    var memoryLimit: String?

    @Flag(name: .customLong("missing-as-empty"), help: "Score a missing prediction as an empty mask instead of failing the case.")
    var missingAsEmpty = false

    @Option(name: .customLong("png-values"),
            help: "PNG masks: binary (0 background, 255 foreground = label 1) or label (pixel values are labels).")
    var pngValues: String = PNGValues.binary.rawValue

    @Flag(name: .customLong("ignore-affine"), help: "Compare images whose shapes match even if their NIfTI affines differ.")
    var ignoreAffine = false

    @Flag(name: [.short, .long], help: "No progress on stderr (errors are still printed).")
    var quiet = false

    func validate() throws {
        let inputs = (prediction != nil || reference != nil ? 1 : 0) + (pairs != nil ? 1 : 0) + (merge.isEmpty ? 0 : 1)
        guard inputs == 1 else { throw ValidationError("give --pred and --ref, or --pairs, or --merge (exactly one of them)") }
        if (prediction == nil) != (reference == nil) { throw ValidationError("--pred and --ref go together") }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads \(threads) is not in 1...256") }
        if let memoryLimit, MemoryBudget(parsing: memoryLimit) == nil {
            throw ValidationError("--memory-limit \(memoryLimit) is not a size: use bytes or K, M, G, T (e.g. 8G)")
        }
        if PNGValues(rawValue: pngValues) == nil { throw ValidationError("--png-values is binary or label") }
        _ = try parsedLabels()
        _ = try parsedSpacing()
        _ = try parsedRegions()
        if images != nil && html == nil { throw ValidationError("--images gives the pictures of --html: give --html too") }
        _ = try parsedNSD()
        if nsd != nil && !merge.isEmpty {
            throw ValidationError("--nsd applies when scoring cases; --merge keeps the tolerances its reports were scored with")
        }
        if let ignoreLabel, !(1...65535).contains(ignoreLabel) { throw ValidationError("--ignore-label \(ignoreLabel) is not a label 1...65535") }
        if let ignoreLabel, let labels = try parsedLabels(), labels.contains(ignoreLabel) {
            throw ValidationError("--labels includes \(ignoreLabel), the --ignore-label: an ignored label cannot be scored")
        }
    }

    func parsedLabels() throws -> [Int]? {
        guard let labels else { return nil }
        let values = labels.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && (1...65535).contains($0!) }) else {
            throw ValidationError("--labels takes foreground labels 1...65535 separated by commas, e.g. 1,2,3")
        }
        return Array(Set(values.map { $0! })).sorted()
    }

    /// --regions "liver=1+2,tumour=2+3" or "1+2,2+3": each a union of labels, with an optional name.
    func parsedRegions() throws -> [(region: Region, name: String?)] {
        guard let regions else { return [] }
        var out: [(Region, String?)] = []
        for item in regions.split(separator: ",", omittingEmptySubsequences: false) {
            var text = item.trimmingCharacters(in: .whitespaces), name: String?
            if let eq = text.firstIndex(of: "=") {
                name = String(text[..<eq]).trimmingCharacters(in: .whitespaces)
                text = String(text[text.index(after: eq)...])
            }
            guard let region = Region(parsing: text), name.map({ !$0.isEmpty }) ?? true else {
                throw ValidationError("--regions takes unions of two or more distinct labels joined by +, each optionally "
                    + "named NAME=, separated by commas, e.g. liver=1+2 or 1+2,2+3; got \"\(item)\"")
            }
            guard !out.contains(where: { $0.0 == region }) else { throw ValidationError("--regions gives \(region.key) twice") }
            out.append((region, name))
        }
        return out
    }

    /// --nsd "1,2": distinct tolerances >= 0, sorted.
    func parsedNSD() throws -> [Double] {
        guard let nsd else { return [] }
        let values = nsd.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard values.allSatisfy({ $0 != nil && $0! >= 0 && $0!.isFinite }) else {
            throw ValidationError("--nsd takes tolerances in mm (>= 0) separated by commas, e.g. 1,2; got \"\(nsd)\"")
        }
        return Array(Set(values.map { $0! })).sorted()
    }

    func parsedSpacing() throws -> [Double]? {
        guard let spacing else { return nil }
        let values = spacing.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...3).contains(values.count), values.allSatisfy({ $0 != nil && $0! > 0 && $0!.isFinite }) else {
            throw ValidationError("--spacing takes one positive number per axis separated by commas, e.g. 0.8,0.8,2.5")
        }
        return values.map { $0! }
    }

    func run() throws {
        let tool = "segment \(SegmentVersion.string)"
        var labels = try parsedLabels()
        var names: [String: String] = [:]
        if let model {
            let classNames = try ModelFile.open(model).metadata.classNames
            for (label, name) in classNames.enumerated().dropFirst() { names[String(label)] = name }
            if labels == nil { labels = Array(1..<max(classNames.count, 1)) }
        }
        let regions = try parsedRegions()
        for (region, name) in regions { if let name { names[region.key] = name } }
        var options = ScoreOptions(labels: labels, classNames: names,
                                   policy: ScoringPolicy(mode: compat, worstDistance: worstDistance),
                                   spacing: try parsedSpacing(), missingAsEmpty: missingAsEmpty,
                                   pngValues: PNGValues(rawValue: pngValues)!, ignoreAffine: ignoreAffine,
                                   threads: threads ?? min(ProcessInfo.processInfo.activeProcessorCount, 256))
        if let memoryLimit { options.budget = MemoryBudget(parsing: memoryLimit)! }
        options.regions = regions.map(\.region)
        options.ignoreLabel = ignoreLabel
        options.nsdTolerances = try parsedNSD()
        let inputs: ScoreRequest.Inputs = !merge.isEmpty ? .merge(merge)
            : pairs.map { .pairsList($0) } ?? .files(prediction: prediction!, reference: reference!)
        var request = ScoreRequest(inputs: inputs, options: options, tool: tool)
        request.json = json
        request.csv = csv
        request.html = html
        request.images = images
        request.quiet = quiet
        try ScoreRun.run(request)
    }
}
