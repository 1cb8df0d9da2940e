// swift-tools-version:6.1
// segment: Swin-UNet (AdvMIM) medical image segmentation on the CPU.
// Module map (one module, one job):
//   CBLAS, CPNG, CNIfTI   system libraries (OpenBLAS, libpng, libnifti2), a modulemap and a one-line header each
//   SegmentCore           exit codes, the user-facing error protocol, atomic file writes, resource limits
//   SegmentCases          the cases of a run or a scoring: discovery, names, order, shards, matching, progress lines
//   SegmentFormat         the model file: layout, metadata, the Swin-UNet tensor spec, reader (mmap + validation), writer
//   SegmentConvert        PyTorch .pth (zip + legacy pickle, restricted unpickler) and safetensors -> model file
//   SegmentKernels        C: the packed-weight GEMM micro-kernels (AVX-512 or portable, chosen at run time) + naive twin
//   SegmentEngine         the Swin-UNet's modules on fused CPU kernels, and its forward
//   SegmentJPEG           C: JPEG decoding through libjpeg-turbo, its longjmp errors caught in C
//   SegmentDCMTK          C++: DCMTK behind a C interface (DICOM attributes, pixel decoding, SEG writing); no C++
//                         exception or DCMTK condition crosses into Swift
//   SegmentDICOM          DICOM series: discovery, grouping, volume assembly with its checks, DICOM SEG output
//   SegmentImaging        NIfTI, PNG and JPEG I/O, resampling (scipy.ndimage.zoom semantics), orientation
//   SegmentReports        one self-contained HTML page of a run or score report (inline pictures, styles, sorter, SVG)
//   SegmentMetrics        Dice / IoU / HD / HD95 / ASSD with an exact EDT, empty-mask policies, reports
//   SegmentRun            the run pipeline: cases, preprocessing, atomic outputs, run reports, exit codes
//   segment               the thin command-line front end (swift-argument-parser)
import PackageDescription

let nifti: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/nifti"])]


let package = Package(
    name: "segment",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "segment", targets: ["segment"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .systemLibrary(name: "CNIfTI", path: "Sources/CNIfTI"),
        // C: libjpeg-turbo behind setjmp, so its longjmp errors come back as return codes (never through Swift).
        .target(name: "SegmentJPEG", linkerSettings: [.linkedLibrary("jpeg")]),

        // C++: DCMTK 3.6.7 (Debian libdcmtk-dev) behind the C interface of include/segment_dcmtk.h.
        .target(name: "SegmentDCMTK",
                linkerSettings: ["dcmseg", "dcmfg", "dcmiod", "dcmjpeg", "dcmjpls", "dcmimage", "dcmimgle", "dcmdata",
                                 "oflog", "ofstd"].map { .linkedLibrary($0) }),

        .target(name: "SegmentCore"),
        .target(name: "SegmentCases", dependencies: ["SegmentCore"]),
        .target(name: "SegmentFormat", dependencies: ["SegmentCore"]),
        .target(name: "SegmentConvert",
                dependencies: ["SegmentCore", "SegmentFormat"]),
        .target(name: "SegmentKernels"),
        .target(name: "SegmentEngine", dependencies: ["SegmentCore", "SegmentFormat", "SegmentKernels"]),
        .target(name: "SegmentImaging", dependencies: ["SegmentCore", "CPNG", "CNIfTI", "SegmentJPEG"], swiftSettings: nifti),
        .target(name: "SegmentDICOM", dependencies: ["SegmentCore", "SegmentDCMTK", "SegmentImaging"], swiftSettings: nifti),
        .target(name: "SegmentReports"),
        .target(name: "SegmentMetrics", dependencies: ["SegmentCore", "SegmentCases", "SegmentImaging", "SegmentReports"], swiftSettings: nifti),
        .target(name: "SegmentRun",
                dependencies: ["SegmentCore", "SegmentCases", "SegmentFormat", "SegmentEngine", "SegmentImaging", "SegmentMetrics",
                               "SegmentDICOM", "SegmentReports"],
                swiftSettings: nifti),
        .executableTarget(name: "segment",
                          dependencies: ["SegmentCore", "SegmentCases", "SegmentFormat", "SegmentConvert", "SegmentEngine", "SegmentImaging",
                                         "SegmentMetrics", "SegmentRun",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: nifti),
        // Benchmark driver of the engine (bench/engine_bench.py runs it); not a product.
        .executableTarget(name: "segment-bench", dependencies: ["SegmentCore", "SegmentEngine", "SegmentFormat", "CBLAS",
                                                                .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Fuzz targets of every input parser (fuzz/README.md): a libFuzzer driver when fuzz/run.sh builds it with the
        // sanitizers, a replayer of the committed corpora otherwise. Not a product.
        .executableTarget(name: "segment-fuzz", dependencies: ["SegmentCore", "SegmentFormat", "SegmentConvert", "SegmentImaging", "SegmentDICOM",
                                                               "SegmentMetrics", "CNIfTI"],
                          swiftSettings: nifti),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // A volume's canonical slices as plain arrays: the definition the imaging and run tests check against.
        .target(name: "ImagingTestSupport", dependencies: ["SegmentImaging"], path: "Tests/ImagingTestSupport", swiftSettings: nifti),
        // The engine's naive twin (the PyTorch forward step by step) and its forward module by module, for the tests.
        .target(name: "NaiveEngine", dependencies: ["SegmentEngine", "SegmentFormat", "SegmentKernels"], path: "Tests/NaiveEngine"),
        // DICOM Part 10 files written byte by byte, for the DICOM tests.
        .target(name: "DICOMTestSupport", path: "Tests/DICOMTestSupport"),
        .testTarget(name: "SegmentDICOMTests", dependencies: ["TestSupport", "DICOMTestSupport", "SegmentDICOM", "SegmentImaging",
                                                              "SegmentCore"], swiftSettings: nifti),
        .testTarget(name: "SegmentCoreTests", dependencies: ["SegmentCore", "TestSupport"]),
        .testTarget(name: "ShimTests", dependencies: ["CBLAS", "CPNG", "CNIfTI"], swiftSettings: nifti),
        .testTarget(name: "SegmentFormatTests", dependencies: ["TestSupport", "SegmentFormat"]),
        .testTarget(name: "SegmentConvertTests", dependencies: ["TestSupport", "SegmentConvert", "SegmentFormat"]),
        .testTarget(name: "SegmentEngineTests", dependencies: ["TestSupport", "NaiveEngine", "SegmentCore", "SegmentEngine", "SegmentKernels", "SegmentFormat", "SegmentConvert"]),
        .testTarget(name: "SegmentImagingTests", dependencies: ["TestSupport", "ImagingTestSupport", "SegmentImaging"], swiftSettings: nifti),
        .testTarget(name: "SegmentMetricsTests", dependencies: ["TestSupport", "SegmentCore", "SegmentCases", "SegmentMetrics", "SegmentImaging", "SegmentFormat"], swiftSettings: nifti),
        .testTarget(name: "SegmentReportsTests", dependencies: ["TestSupport", "SegmentReports"]),
        .testTarget(name: "SegmentRunTests", dependencies: ["TestSupport", "ImagingTestSupport", "SegmentCases", "SegmentRun", "SegmentImaging", "segment"], swiftSettings: nifti),
    ],
    swiftLanguageModes: [.v5]
)
