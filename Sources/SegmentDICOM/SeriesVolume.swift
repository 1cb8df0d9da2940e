// A series into a volume. The frames are sorted by their position along the slice normal n = row x column (never by
// InstanceNumber or file name), then checked: one size, one pixel spacing, one orientation, positions stepping
// evenly along n (a missing slice shows as a gap, a repeated one as a zero step) and only along n (a gantry tilt or
// sheared stack steps sideways). A series that fails a check is refused with the check named; nothing is guessed.
//
// The volume is the one NIfTI would hold: i along a row (the column index), j down the columns (the row index), k
// through the sorted slices, so voxel (i, j, k) is pixel (row j, column i) of frame k; the affine maps it to RAS
// (DICOM's LPS with x and y negated). Values are stored value x RescaleSlope + RescaleIntercept.
import Foundation
import SegmentCore
import SegmentImaging

/// A series assembled on its grid.
public struct SeriesVolume {
    public let series: DICOMSeries
    /// The frames in slice order (k = 0, 1, ...).
    public let frames: [SeriesFrame]
    /// (X, Y, Z) = (columns, rows, slices), the affine to RAS and the values, as a NIfTI file would hold them.
    public let volume: NIfTIVolume
    /// ImageOrientationPatient shared by every frame.
    public let orientation: [Double]
    /// PixelSpacing shared by every frame: [between rows, between columns] mm.
    public let pixelSpacing: [Double]
    /// The distance between slice centres along the normal, mm (for a single slice: its SliceThickness, else 1).
    public let sliceStep: Double
}

public enum SeriesAssembly {
    /// How far positions may stray and still count as one evenly spaced stack: 1 % of the slice step (DS values carry
    /// at most 16 characters, so written positions are rounded to about 1e-4 mm; a missing slice is a 100 % error
    /// and a one-degree gantry tilt at 1 mm steps 1.7 %), and never less than 1e-3 mm.
    public static let positionTolerance = 0.01
    /// Largest difference of two frames' orientation cosines, and of a direction cosine vector's length from 1 and
    /// of the row and column directions' dot product from 0 (DS rounding again).
    public static let orientationTolerance = 1e-4

    /// JPEG 2000 (and HTJ2K) transfer syntaxes: DCMTK has no decoder for them.
    static let jpeg2000: Set<String> = [
        "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
    ]

    /// Assembles `series`: the checks above, then the pixel data of every file, decoded. The decoded volume must fit
    /// `budget` (checked before any pixel data is read).
    public static func assemble(_ series: DICOMSeries, budget: MemoryBudget) throws -> SeriesVolume {
        let uid = series.seriesInstanceUID
        func refuse(_ check: String, _ detail: String) -> DICOMError {
            .inconsistentSeries(series: uid, check: check, detail: detail)
        }
        guard let first = series.frames.first else { throw refuse("frames", "it has no image frame") }
        if let ts = series.transferSyntaxes.first(where: jpeg2000.contains) {
            throw DICOMError.unsupported(path: series.files[0], what: "its pixel data is JPEG 2000 compressed (transfer syntax \(ts)), which DCMTK and so segment cannot decode. Decompress the series first (e.g. `gdcmconv --raw IN OUT` or `dcmdjp2k`)")
        }

        // Geometry every frame must have.
        for f in series.frames {
            guard f.rows > 0, f.columns > 0 else { throw DICOMError.missingAttribute(path: f.path, attribute: "Rows (0028,0010) and Columns (0028,0011)") }
            guard f.position != nil else { throw DICOMError.missingAttribute(path: f.path, attribute: "ImagePositionPatient (0020,0032)") }
            guard f.orientation != nil else { throw DICOMError.missingAttribute(path: f.path, attribute: "ImageOrientationPatient (0020,0037)") }
            guard let s = f.pixelSpacing else { throw DICOMError.missingAttribute(path: f.path, attribute: "PixelSpacing (0028,0030)") }
            guard s.allSatisfy({ $0 > 0 }) else { throw DICOMError.unsupported(path: f.path, what: "PixelSpacing \(s) is not positive") }
            guard f.slope != 0 else { throw DICOMError.unsupported(path: f.path, what: "RescaleSlope is 0") }
        }
        let (rows, columns) = (first.rows, first.columns)
        if let f = series.frames.first(where: { $0.rows != rows || $0.columns != columns }) {
            throw refuse("size", "\(name(f)) is \(f.rows) x \(f.columns) pixels but \(name(first)) is \(rows) x \(columns)")
        }
        let spacing = first.pixelSpacing!
        if let f = series.frames.first(where: { zip($0.pixelSpacing!, spacing).contains { abs($0 - $1) > 1e-4 * max(1, $1) } }) {
            throw refuse("pixel spacing", "\(name(f)) has PixelSpacing \(f.pixelSpacing!) but \(name(first)) has \(spacing)")
        }
        let iop = first.orientation!
        if let f = series.frames.first(where: { zip($0.orientation!, iop).contains { abs($0 - $1) > orientationTolerance } }) {
            throw refuse("orientation", "\(name(f)) has ImageOrientationPatient \(f.orientation!) but \(name(first)) has \(iop): the slices are not parallel")
        }
        let r = Array(iop[0..<3]), c = Array(iop[3..<6])
        guard abs(norm(r) - 1) < 1e-3, abs(norm(c) - 1) < 1e-3, abs(dot(r, c)) < 1e-3 else {
            throw refuse("orientation", "ImageOrientationPatient \(iop) of \(name(first)) is not two orthogonal unit vectors")
        }
        let n = cross(r, c)

        // Slice order: by position along the normal.
        let frames = series.frames.sorted { dot($0.position!, n) < dot($1.position!, n) }
        let K = frames.count
        var step = 0.0
        if K > 1 {
            let d = frames.map { dot($0.position!, n) }
            let steps = (1..<K).map { d[$0] - d[$0 - 1] }
            let typical = steps.sorted()[steps.count / 2]
            if let k = steps.firstIndex(where: { $0 < 1e-3 }) {
                throw refuse("slice positions", "\(name(frames[k])) and \(name(frames[k + 1])) lie at the same position \(frames[k].position!) (a repeated slice, or two acquisitions in one series)")
            }
            let tolerance = max(positionTolerance * typical, 1e-3)
            if let k = steps.firstIndex(where: { abs($0 - typical) > tolerance }) {
                let what = steps[k] > typical ? "a gap: a missing slice?" : "uneven spacing"
                throw refuse("slice spacing", String(format: "between %@ and %@ the slices are %.4g mm apart, but %.4g mm elsewhere (%@)",
                                                     name(frames[k]), name(frames[k + 1]), steps[k], typical, what))
            }
            for k in 1..<K {
                let delta = sub(frames[k].position!, frames[k - 1].position!)
                let along = dot(delta, n)
                let sideways = norm(sub(delta, n.map { $0 * along }))
                if sideways > tolerance {
                    throw refuse("slice alignment", String(format: "from %@ to %@ the position moves %.4g mm sideways for %.4g mm along the slice normal (gantry tilt or a sheared stack), which segment does not resample", name(frames[k - 1]), name(frames[k]), sideways, along))
                }
            }
            step = (d[K - 1] - d[0]) / Double(K - 1)
        }

        // LPS columns of the affine: i along the row direction by the column spacing, j along the column direction
        // by the row spacing, k along the sorted positions; then LPS -> RAS.
        let thickness = K > 1 ? step : (first.sliceThickness.flatMap { $0 > 0 ? $0 : nil } ?? 1.0)
        let kColumn = K > 1 ? sub(frames[K - 1].position!, frames[0].position!).map { $0 / Double(K - 1) } : n.map { $0 * thickness }
        let origin = frames[0].position!
        let lps: [[Double]] = (0..<3).map { a in [r[a] * spacing[1], c[a] * spacing[0], kColumn[a], origin[a]] }
        var ras = lps
        ras[0] = ras[0].map { -$0 }; ras[1] = ras[1].map { -$0 }
        let affine = Affine(ras + [[0, 0, 0, 1]])

        // Storage: int16 with NIfTI's scaling (what dcm2niix writes) when every frame shares one rescale and
        // BitsStored bounds the values to int16; else the float32 values.
        let sliceSize = rows * columns
        guard let voxels = checkedProduct([sliceSize, K]) else { throw refuse("size", "\(rows) x \(columns) x \(K) voxels are too many") }
        let slope = first.slope, intercept = first.intercept
        let fitsInt16 = frames.allSatisfy { $0.bitsStored <= ($0.signed ? 16 : 15) }
        let int16 = fitsInt16 && frames.allSatisfy { $0.slope == slope && $0.intercept == intercept }
        let framesPerFile = Dictionary(grouping: series.frames, by: \.path).mapValues(\.count)
        let largestFile = framesPerFile.values.max() ?? 1
        try budget.check(checkedProduct([voxels, int16 ? 2 : 4]).flatMap { v in checkedProduct([sliceSize, largestFile, 4]).map { v + $0 } },
                         path: series.files[0], what: "assembling series \(uid): \(columns) x \(rows) x \(K) voxels")

        // Voxels: one read per file, each frame converted straight into its slice of the volume.
        var sliceOf: [String: [(frame: Int, k: Int)]] = [:]
        for (k, f) in frames.enumerated() { sliceOf[f.path, default: []].append((f.frame ?? 0, k)) }
        let volume = try NIfTIVolume.inMemory(
            name: series.files.count == 1 ? series.files[0] : "series \(uid)", shape: [columns, rows, K],
            spacing: [spacing[1], spacing[0], thickness], affine: affine,
            storage: int16 ? .int16(slope: slope, inter: intercept) : .float32
        ) { storage in
            for path in series.files {
                guard let targets = sliceOf[path] else { continue }
                let file = try DICOMFile(path)
                let count = Int(file.number(Tag.numberOfFrames) ?? 1)
                if let spp = file.number(Tag.samplesPerPixel), spp != 1 {
                    throw DICOMError.unsupported(path: path, what: "it has \(Int(spp)) samples per pixel (colour); segment reads grey-level (MONOCHROME) images")
                }
                if let pi = file.string(Tag.photometricInterpretation), !pi.hasPrefix("MONOCHROME") {
                    throw DICOMError.unsupported(path: path, what: "PhotometricInterpretation is \(pi); segment reads MONOCHROME1/2 images")
                }
                let values = try file.pixels(count: sliceSize * count)      // (frames, rows, columns)
                try values.withUnsafeBufferPointer { src in
                    for t in targets {
                        guard t.frame < count else { throw DICOMError.pixels(path: path, reason: "frame \(t.frame + 1) is past its \(count) frames") }
                        let from = src.baseAddress! + t.frame * sliceSize
                        if int16 {
                            let to = storage.baseAddress!.assumingMemoryBound(to: Int16.self) + t.k * sliceSize
                            for i in 0..<sliceSize { to[i] = Int16(truncatingIfNeeded: from[i]) }
                        } else {
                            let to = storage.baseAddress!.assumingMemoryBound(to: Float.self) + t.k * sliceSize
                            let (s, b) = (frames[t.k].slope, frames[t.k].intercept)
                            for i in 0..<sliceSize { to[i] = Float(Double(from[i]) * s + b) }
                        }
                    }
                }
            }
        }
        return SeriesVolume(series: series, frames: frames, volume: volume, orientation: iop, pixelSpacing: spacing,
                            sliceStep: thickness)
    }

    /// A frame as messages name it: the file, and the frame of a multi-frame file.
    static func name(_ f: SeriesFrame) -> String {
        f.frame.map { "\(f.path) (frame \($0 + 1))" } ?? f.path
    }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }
func sub(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 - $1 } }
func cross(_ a: [Double], _ b: [Double]) -> [Double] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
