// `segment [run] INPUT -o OUTPUT`: the default subcommand. Flags map onto SegmentRun.RunOptions; docs/RUN.md is the
// user documentation.
import ArgumentParser
import Foundation
import SegmentCases
import SegmentCore
import SegmentImaging
import SegmentEngine
import SegmentRun

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Segment a NIfTI volume, a PNG or JPEG image, a DICOM series, or a folder of them (the default subcommand).",
        discussion: """
        Examples:
          segment scan.nii.gz -o mask.nii.gz
          segment image.png -o mask.png
          segment ISIC2018_Task1-2_Test_Input/ -o masks/ --isic-names
          segment cases/ -o masks/ --report run.json --continue
          segment CT_SERIES/ -o seg.dcm                  (a DICOM series in, a DICOM SEG out)
          segment study/ -o masks/ --output-format dicom-seg
        Preprocessing (slice axis, orientation, intensity, resampling) comes from the model file. Progress goes to \
        stderr: a bar on a terminal, else one line per case ("segment: case=NAME status=ok|skipped|failed ..."). \
        Exit codes: 0 success, 1 internal error, 2 usage, 3 invalid input, 4 invalid model, 5 output not writable, \
        6 some cases of a folder failed (the report lists them). See docs/RUN.md.
        """)

    @Argument(help: "A .nii / .nii.gz / .png / .jpg / .jpeg file, or a folder of them (not searched recursively); or a DICOM file, or a folder of DICOM series (searched recursively; one case per series).")
    var input: String?

    @Option(name: [.customShort("o"), .customLong("output")],
            help: "The mask file (.nii/.nii.gz for NIfTI, .png for PNG and JPEG), or a folder for a folder input.")
    var output: String?

    @Option(help: "The model file (default: $SEGMENT_MODEL, then the shipped swin-unet-lits-advmim.segm; see docs/RUN.md).")
    var model: String?

    @Option(help: "CPU threads, 1...256 (default: all cores, at most 256).")
    var threads: Int?

    @Option(help: "Slices per network call, 1...64.")
    var batch: Int = 4

    @Option(help: ArgumentHelp(
        "Arithmetic of the network: fp32 (default, exact), bf16 or auto.",
        discussion: "bf16 multiplies in bf16 with fp32 sums (AVX512-BF16 or AMX-BF16; refused with exit 2 on a CPU without either); LayerNorm, softmax, GELU, residuals and the output head stay fp32. On the shipped model and LiTS volume 117 its mask agrees with fp32 on 99.97 % of voxels (docs/PERFORMANCE.md, \"bf16\"). auto: bf16 where the CPU has AMX, else fp32 (without AMX, bf16 is slower than fp32). The run report records the precision and kernels used."))
    var precision: Precision = .fp32

    @Option(name: .customLong("memory-limit"),
            help: "Memory one case may use, e.g. 8G or 512M: a larger image is refused (exit 3) before it is read (default: half of the machine's memory or of ulimit -v).")
    var memoryLimit: String?

    @Option(help: "Also write the softmax probabilities (float32): a .nii/.nii.gz 4D volume (X,Y,Z,classes) or .npy; a folder for a folder input.")
    var probabilities: String?

    @Option(help: "Write overlay pictures (PNG: the input with a translucent mask and its outline) into this folder.")
    var overlay: String?

    @Option(name: .customLong("overlay-slices"), help: "Volume slices to draw with --overlay and --html: auto (most foreground, the default), all, or a list like 10,20,30.")
    var overlaySlices: String?

    @Option(help: "Write the run report (JSON) to this file.")
    var report: String?

    @Option(help: ArgumentHelp("Write the run as one self-contained HTML page: per case its mask over three orthogonal views (volumes) and per label volume (ml) and mean intensity.",
                               valueName: "report.html"))
    var html: String?

    @Flag(name: .customLong("continue"), help: "Skip cases whose mask exists.")
    var continueRun = false

    @Flag(help: "Replace existing outputs (without --continue or --overwrite an existing output is an error).")
    var overwrite = false

    @Option(help: "Process part i of n of a folder's sorted cases (0 <= i < n: cases i, i+n, ...), as nnU-Net's -part_id/-num_parts.")
    var shard: String?

    @Flag(help: "No progress on stderr (errors are still printed).")
    var quiet = false

    @Flag(help: "Print the run report (JSON) on stdout.")
    var json = false

    @Option(help: "The volume (0-based) of a 4D NIfTI to segment.")
    var volume: Int?

    @Option(name: .customLong("png-values"), help: "PNG mask values: binary (0/255) or label (0, 1, 2, ...); default binary for two-class models, else label.")
    var pngValues: String?

    @Flag(name: .customLong("isic-names"), help: "Name the masks of PNG and JPEG inputs NAME_segmentation.png (ISIC) in a folder run.")
    var isicNames = false

    @Option(name: .customLong("ref"), help: "Reference mask (a file, or a folder matched by case name): adds scores to the report.")
    var reference: String?

    @Option(name: .customLong("series"), help: "Segment only this series (SeriesInstanceUID) of a DICOM folder.")
    var series: String?

    @Option(name: .customLong("output-format"),
            help: "A DICOM series' mask: nifti (default into a folder) or dicom-seg (a DICOM Segmentation, UID.dcm). For a file -o, its extension decides (.dcm, .nii, .nii.gz).")
    var outputFormat: String?

    @Option(name: .customLong("merge-reports"), parsing: .upToNextOption,
            help: "Merge the run reports of a folder's shards (with --report FILE and/or --json) instead of running.")
    var mergeReports: [String] = []

    @Flag(name: .customLong("in-process"),
          help: "Segment in this process instead of a worker process (for debuggers and profilers): a crashing case then ends the run.")
    var inProcess = false

    @Option(name: .customLong(String(CleanupGuard.flag.dropFirst(2))), help: .hidden)
    var cleanupGuard: String?

    @Flag(name: .customLong(String(CaseWorker.flag.dropFirst(2))), help: .hidden)
    var worker = false

    func run() throws {
        if let spec = cleanupGuard { Foundation.exit(CleanupGuard.serve(spec: spec)) }
        if worker { Foundation.exit(CaseWorker.serve()) }
        if !mergeReports.isEmpty {
            guard html == nil else { throw ValidationError("--html draws a run's cases; it does not go with --merge-reports") }
            guard input == nil && output == nil else { throw ValidationError("--merge-reports takes report files, not an input or -o") }
            return try Runner.mergeReports(mergeReports, report: report, json: json, toolVersion: SegmentVersion.string,
                                           commandLine: CommandLine.arguments)
        }
        guard let input else { throw ValidationError("give an input file or folder: segment INPUT -o OUTPUT") }
        guard let output else { throw ValidationError("give the output with -o (a mask file, or a folder for a folder input)") }
        var o = RunOptions(input: input, output: output)
        o.model = model
        if let threads { o.threads = threads }
        o.batch = batch
        o.precision = precision
        o.inProcess = inProcess
        if let memoryLimit {
            guard let budget = MemoryBudget(parsing: memoryLimit) else {
                throw ValidationError("--memory-limit \(memoryLimit) is not a size: use bytes or K, M, G, T (e.g. 8G)")
            }
            o.memoryLimit = budget
        }
        o.probabilities = probabilities
        o.overlay = overlay
        if let overlaySlices {
            guard overlay != nil || html != nil else {
                throw ValidationError("--overlay-slices chooses the slices of --overlay DIR and --html: give one of them too")
            }
            o.overlaySlices = try OverlaySlices(parsing: overlaySlices)
        }
        o.report = report
        o.html = html
        o.continueRun = continueRun
        o.overwrite = overwrite
        if let shard { o.shard = try Shard(parsing: shard) }
        o.quiet = quiet
        o.json = json
        o.volume = volume
        if let pngValues {
            guard let values = PNGValues(rawValue: pngValues) else { throw ValidationError("--png-values \(pngValues) must be binary or label") }
            o.pngValues = values
        }
        o.isicNames = isicNames
        o.reference = reference
        o.series = series
        if let f = outputFormat {
            guard let format = OutputFormat(rawValue: f) else {
                throw ValidationError("--output-format \(f) must be nifti or dicom-seg")
            }
            o.outputFormat = format
        }
        o.toolVersion = SegmentVersion.string
        o.commandLine = CommandLine.arguments
        try Runner.run(o, executable: Bundle.main.executablePath ?? "/proc/self/exe")
    }
}

extension Precision: ExpressibleByArgument {}
