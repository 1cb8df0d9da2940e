// One case, end to end: read the image, map it to the model's convention (slice axis, in-plane orientation), apply
// the intensity transform, resample each slice to the model grid, run the network in batches of slices, resample the
// label map back (order 0) and put it on the input's grid, then write the outputs (probabilities and overlays first,
// the mask last: an existing mask means its case finished).
//
// Volumes are streamed: slices are read from the stored voxels one batch at a time; the only whole-volume buffers are
// the input as stored and the uint8 mask (plus the float probabilities when asked for).
import Foundation
import SegmentCases
import SegmentCore
import SegmentDICOM
import SegmentEngine
import SegmentFormat
import SegmentImaging
import SegmentMetrics

final class Segmenter {
    let metadata: ModelMetadata
    let engine: SwinUNetEngine
    let options: RunOptions
    let progress: CaseProgress

    private let pre: Preprocessing
    private let S: Int            // model grid side (img_size)
    private let nc: Int           // classes
    private let batch: Int        // slices per engine call
    // Engine buffers, reused by every call:
    private var input: [Float]          // (batch, channels <= 3, S, S)
    private var labels: [UInt8]         // (batch, S, S)
    private var probabilities: [Float]  // (batch, nc, S, S); empty without --probabilities

    /// The model file's name and checksum, for the algorithm identification of a DICOM SEG.
    let model: (name: String, checksum: String)

    init(metadata: ModelMetadata, engine: SwinUNetEngine, options: RunOptions, progress: CaseProgress,
         model: (name: String, checksum: String)) {
        self.metadata = metadata; self.engine = engine; self.options = options; self.progress = progress
        self.model = model
        pre = metadata.preprocessing
        S = metadata.config.imgSize
        nc = metadata.config.numClasses
        batch = options.batch
        input = [Float](repeating: 0, count: batch * 3 * S * S)
        labels = [UInt8](repeating: 0, count: batch * S * S)
        probabilities = options.probabilities == nil ? [] : [Float](repeating: 0, count: batch * nc * S * S)
    }

    /// Segments `c` and writes its outputs; with a reference, returns the case's scores. Throws the case's error
    /// (a SegmentError for every user-facing failure).
    func segment(_ c: RunCase, into record: inout CaseRecord) throws -> CaseScore? {
        switch c.source {
        case .image(let f) where f.kind == .nifti:
            // The whole case's memory from the header, before the voxels are read (docs/RELIABILITY.md, "Limits").
            let declared = try NIfTIHeader.read(c.input)
            try options.memoryLimit.check(checkedProduct([declared.voxelCount, declared.datatype.size + bytesPerOutputVoxel]),
                                          path: c.input, what: "segmenting its \(declared.shape.map(String.init).joined(separator: " x ")) voxels")
            let volume = try NIfTIVolume.read(c.input, volume: options.volume, budget: options.memoryLimit)
            return try segmentVolume(c, volume, into: &record)
        case .image:
            return try segmentPicture(c, into: &record)
        case .series(let series):
            return try segmentSeries(c, series, into: &record)
        }
    }

    // MARK: DICOM series

    /// A series is assembled into the volume a NIfTI file of it would hold, then segmented as one.
    private func segmentSeries(_ c: RunCase, _ series: DICOMSeries, into record: inout CaseRecord) throws -> CaseScore? {
        if options.volume != nil { throw RunError.usage("--volume picks a volume of a 4D NIfTI; \(c.input) is a DICOM series.") }
        let first = series.frames[0]
        // The case's memory before any pixel data is read: the decoded values (4 bytes), the volume (up to 4) and the outputs.
        try options.memoryLimit.check(checkedProduct([first.rows, first.columns, series.frames.count, 8 + bytesPerOutputVoxel]),
                                      path: c.input, what: "segmenting series \(series.seriesInstanceUID): \(first.columns) x \(first.rows) x \(series.frames.count) voxels")
        record.series = SeriesRecord(series)
        let assembled = try SeriesAssembly.assemble(series, budget: options.memoryLimit)
        return try segmentVolume(c, assembled.volume, series: assembled, into: &record)
    }

    /// Writes `mask` ((slices, rows, columns) of the series, columns fastest: the volume's array order) as a DICOM
    /// SEG on the series' own grid, one segment per foreground class, described by the model file's class codes.
    private func writeSEG(_ c: RunCase, _ mask: [UInt8], _ series: SeriesVolume, into record: inout CaseRecord) throws {
        let names = metadata.classNames
        var uncoded: [String] = []
        let segments = (1..<nc).map { l -> SegmentDescription in
            let name = l < names.count ? names[l] : "label \(l)"
            guard let codes = metadata.codes(of: l) else {
                uncoded.append(name)
                return SegmentDescription.fallback(label: l, name: name)
            }
            return SegmentDescription(label: l, name: name, category: codes.category, type: codes.type, cielab: SegColour.palette(l))
        }
        if !uncoded.isEmpty {
            record.warnings = (record.warnings ?? []) + [
                "the model file has no class codes for \(uncoded.joined(separator: ", ")): the SEG describes them as SNOMED CT 85756007 Tissue. "
                + "Store codes with `segment convert MODEL --class-code LABEL=SCT:CODE:MEANING -o MODEL2`"]
        }
        let first = series.frames[0]
        let geometry = SegGeometry(rows: first.rows, columns: first.columns, pixelSpacing: series.pixelSpacing,
                                   sliceThickness: series.sliceStep, orientation: series.orientation)
        let sources = series.frames.map { f in
            SourceFrame(path: f.path, sopClassUID: f.sopClassUID, sopInstanceUID: f.sopInstanceUID,
                        frameNumber: f.frame.map { $0 + 1 }, position: f.position ?? [0, 0, 0])
        }
        let algorithm = SegAlgorithm(name: "segment", version: options.toolVersion, modelName: model.name, modelChecksum: model.checksum)
        let description = "segment \((model.name as NSString).deletingPathExtension)"
        record.seg = try SegWriter.write(labels: mask, geometry: geometry, sources: sources, segments: segments,
                                         algorithm: algorithm, seriesDescription: description, to: c.output)
    }

    // MARK: volumes (NIfTI files and DICOM series)

    /// `series`: the DICOM series the volume was assembled from (its SEG is written on the series' grid).
    private func segmentVolume(_ c: RunCase, _ volume: NIfTIVolume, series: SeriesVolume? = nil,
                               into record: inout CaseRecord) throws -> CaseScore? {
        let header = volume.header
        // The reference first: a wrong one fails the case before any work. A volume of one slice is a 2D image.
        let reference = try readReference(c, shape: header.shape[2] == 1 ? Array(header.shape.prefix(2)) : header.shape,
                                          affine: header.affine)
        let layout = try VolumeLayout.forModel(
            sliceAxis: pre.sliceAxis, rowAxis: pre.rowAxis, colAxis: pre.colAxis, orientation: pre.orientation,
            volumeAxisCodes: pre.orientation.isEmpty ? "" : try header.axisCodes, path: c.input)
        let shape = header.shape
        let addressing = SliceAddressing(layout, arrayShape: shape)
        let (K, R, C) = (addressing.slices, addressing.rows, addressing.cols)
        if options.overlay != nil || options.html != nil, case .list(let l) = options.overlaySlices, let bad = l.first(where: { $0 >= K }) {
            throw RunError.usage("--overlay-slices \(bad) is past the last slice \(K - 1) of \(c.input).")
        }
        record.shape = shape
        record.spacing = header.spacing
        record.slices = K
        progress.caseStarted(c.name, slices: K)

        var statistics = IntensityStatistics()
        if IntensityTransform.needsStatistics(pre) {
            for k in 0..<K { statistics.add(volume.slice(k, layout: layout)) }
        }
        let transform = IntensityTransform(pre, statistics: statistics)

        let N = header.voxelCount
        var mask = [UInt8](repeating: 0, count: N)                       // (X, Y, Z), X fastest
        var classProbabilities: [[Float]] = options.probabilities == nil ? [] : (0..<nc).map { _ in [Float](repeating: 0, count: N) }

        for start in stride(from: 0, to: K, by: batch) {
            let n = min(batch, K - start)
            for b in 0..<n {
                var slice = volume.slice(start + b, layout: layout)      // (R, C)
                transform.apply(&slice)
                place(slice, rows: R, cols: C, channels: 1, at: b)
            }
            run(n, channels: 1)
            for b in 0..<n {
                let k = start + b
                let back = labelsBack(b, rows: R, cols: C)
                back.withUnsafeBufferPointer { l in mask.withUnsafeMutableBufferPointer { addressing.scatter(l, slice: k, into: $0) } }
                for j in 0..<classProbabilities.count {
                    let p = resampleBack(probabilityPlane(b, j), rows: R, cols: C)
                    p.withUnsafeBufferPointer { p in
                        classProbabilities[j].withUnsafeMutableBufferPointer { addressing.scatter(p, slice: k, into: $0) }
                    }
                }
            }
            progress.slicesFinished(n)
        }
        let scores = try reference.map { try score(c, mask, $0) }

        if let path = c.probabilities {
            let all = Array(classProbabilities.joined())               // (X, Y, Z, classes), X fastest
            classProbabilities = []
            if path.lowercased().hasSuffix(".npy") {
                try NPYWriter.writeFloat32(all, shape: shape + [nc], to: path)
            } else {
                try header.writeFloats(all, channels: nc, to: path)
            }
            record.probabilities = path
        }
        if let folder = options.overlay {
            record.overlays = try writeVolumeOverlays(c, volume: volume, layout: layout, addressing: addressing, mask: mask,
                                                      folder: folder)
        }
        if c.writesSEG, let series {
            try writeSEG(c, mask, series, into: &record)
        } else {
            try header.writeMask(mask, to: c.output)
        }
        // Sum of the input's finite values (scaled, as nibabel's get_fdata: HU for CT) per label, slice by slice; NaN
        // and infinite voxels are left out of the mean (numpy's nanmean over finite values), so it stays a number.
        var sums = [Double](repeating: 0, count: 256)
        var finite = [Int](repeating: 0, count: 256)
        var maskSlice = [UInt8](repeating: 0, count: R * C)                // (R, C)
        for k in 0..<K {
            let values = volume.slice(k, layout: layout)                    // (R, C)
            mask.withUnsafeBufferPointer { m in maskSlice.withUnsafeMutableBufferPointer { addressing.gather(m, slice: k, into: $0) } }
            for i in 0..<(R * C) where values[i].isFinite {
                sums[Int(maskSlice[i])] += Double(values[i])
                finite[Int(maskSlice[i])] += 1
            }
        }
        record.labels = labelRecords(mask, voxelMillilitres: header.spacing.reduce(1, *) / 1000, sums: [sums], finite: finite)
        return scores
    }

    // MARK: PNG and JPEG pictures

    private func segmentPicture(_ c: RunCase, into record: inout CaseRecord) throws -> CaseScore? {
        // A JPEG is as shown (EXIF orientation applied), so its mask is too.
        let picture = c.kind == .jpeg ? try JPEG.read(c.input, budget: options.memoryLimit)
                                      : try PNGImage.read(c.input, budget: options.memoryLimit)
        let (H, W) = (picture.height, picture.width)
        // The decoded picture (4 bytes a channel), its planes for the network, and the outputs.
        try options.memoryLimit.check(checkedProduct([H * W, 8 * picture.channels + bytesPerOutputVoxel]), path: c.input,
                                      what: "segmenting its \(W) x \(H) pixels")
        let reference = try readReference(c, shape: [W, H], affine: nil)
        record.shape = [H, W]
        record.slices = 1
        progress.caseStarted(c.name, slices: 1)

        // Channels, planar (channels, H, W): the model's "rgb" takes RGB (a gray picture is repeated inside the engine);
        // its "gray" takes gray (an RGB picture becomes its luma 0.299 R + 0.587 G + 0.114 B, ITU-R BT.601).
        var planes: [[Float]]
        if let w = Segmenter.channelWarning(model: pre.channels, pictureChannels: picture.channels) {
            record.warnings = (record.warnings ?? []) + [w]
        }
        if pre.channels == .rgb && picture.channels == 3 {
            planes = (0..<3).map { ch in stride(from: ch, to: picture.pixels.count, by: 3).map { picture.pixels[$0] } }
        } else if picture.channels == 3 {
            planes = [(0..<(H * W)).map { i in
                0.299 * picture.pixels[3 * i] + 0.587 * picture.pixels[3 * i + 1] + 0.114 * picture.pixels[3 * i + 2]
            }]
        } else {
            planes = [picture.pixels]
        }
        var statistics = IntensityStatistics()
        if IntensityTransform.needsStatistics(pre) { for p in planes { statistics.add(p) } }
        let transform = IntensityTransform(pre, statistics: statistics)
        for i in planes.indices { transform.apply(&planes[i]) }
        for (ch, p) in planes.enumerated() { place(p, rows: H, cols: W, channels: planes.count, at: 0, channel: ch) }
        run(1, channels: planes.count)

        let mask = labelsBack(0, rows: H, cols: W)
        let scores = try reference.map { try score(c, mask, $0) }
        if let path = c.probabilities {
            // (H, W, classes) with H fastest (fortran order), so numpy.load(path)[h, w, c] is the probability.
            var all = [Float](repeating: 0, count: H * W * nc)
            for j in 0..<nc {
                let p = resampleBack(probabilityPlane(0, j), rows: H, cols: W)
                for h in 0..<H { for w in 0..<W { all[h + H * (w + W * j)] = p[h * W + w] } }
            }
            try NPYWriter.writeFloat32(all, shape: [H, W, nc], to: path)
            record.probabilities = path
        }
        if let folder = options.overlay {
            let path = CasePlanner.join(folder, c.name + ".png")
            let o = Overlay.picture(image: picture.pixels, channels: picture.channels, width: W, height: H, labels: mask,
                                    window: overlayWindow, classNames: metadata.classNames)
            try PNGWriter.writeRGB(o.rgb, width: o.width, height: o.height, to: path)
            record.overlays = [path]
        }
        try PNGWriter.writeMask(mask, width: W, height: H, values: pngValues, to: c.output)
        // Sum of the picture's stored values per label and channel (0...255 for 8-bit pictures, 0...65535 for 16-bit):
        // pixels hold v / (2^depth - 1), so scaling back and rounding gives the stored integer exactly.
        let top = Double((1 << picture.bitDepth) - 1)
        var sums = [[Double]](repeating: [Double](repeating: 0, count: 256), count: picture.channels)
        for i in 0..<(H * W) {
            for ch in 0..<picture.channels {
                sums[ch][Int(mask[i])] += (Double(picture.pixels[i * picture.channels + ch]) * top).rounded()
            }
        }
        record.labels = labelRecords(mask, voxelMillilitres: nil, sums: sums)
        return scores
    }

    /// The grey levels of overlays: the model's own CT window when it has one, so the picture shows what the
    /// network was shown; else each slice's min-max.
    private var overlayWindow: (lo: Float, hi: Float)? {
        pre.intensity == .window ? (Float(pre.windowLo), Float(pre.windowHi)) : nil
    }

    /// The warning for a picture whose colour does not match the model's input: it is converted, and the user
    /// should know (a gray model fed dermoscopy photos, or a colour-trained checkpoint converted as gray).
    static func channelWarning(model: Preprocessing.Channels, pictureChannels: Int) -> String? {
        switch (model, pictureChannels) {
        case (.gray, 3):
            return "an RGB picture given to a model that takes gray: converted to its luma (0.299 R + 0.587 G + 0.114 B). "
                + "If the checkpoint was trained on colour, convert it again with --channels rgb"
        case (.rgb, 1):
            return "a gray picture given to a model that takes RGB: its gray value was repeated in R, G and B"
        default:
            return nil
        }
    }

    /// Bytes a voxel of the input grid takes beyond the stored image: the mask, a reference's labels (with --ref), and
    /// the probabilities (with --probabilities: one float a class, and the copy that is written).
    private var bytesPerOutputVoxel: Int {
        1 + (options.reference == nil ? 0 : 2 + 16) + (options.probabilities == nil ? 0 : 8 * nc)
    }

    /// PNG mask values: as asked, else 0/255 for a two-class model and the labels otherwise.
    var pngValues: PNGValues { options.pngValues ?? (nc == 2 ? .binary : .label) }

    // MARK: scoring (--ref)

    /// The case's reference, checked to lie on the input's grid (`shape` as SegmentMetrics orders it, first axis
    /// fastest; the affine within SegmentMetrics.affineTolerance). Nil without --ref.
    private func readReference(_ c: RunCase, shape: [Int], affine: Affine?) throws -> (path: String, image: LabelImage)? {
        guard case .found(let path) = c.reference else { return nil }
        let image = try LabelImage.read(path, pngValues: pngValues, budget: options.memoryLimit)
        var problem: String?
        if image.labels.shape != shape {
            problem = "shape \(shape) vs \(image.labels.shape)"
        } else if let a = affine, let b = image.affine, a.maxDifference(b) > affineTolerance {
            problem = "affines differ by up to \(a.maxDifference(b)) mm"
        }
        if let problem { throw RunError.referenceGrid(input: c.input, reference: path, problem: problem) }
        return (path, image)
    }

    /// Scores of the mask (same memory order as the reference) for every foreground class of the model.
    private func score(_ c: RunCase, _ mask: [UInt8], _ ref: (path: String, image: LabelImage)) throws -> CaseScore {
        try scoreCase(name: c.name, prediction: LabelMap(shape: ref.image.labels.shape, uint8Labels: mask),
                      reference: ref.image.labels, spacing: ref.image.spacing, unit: ref.image.unit,
                      labels: Array(1..<nc), predictionFile: c.output, referenceFile: ref.path, threads: options.threads)
    }

    // MARK: helpers

    /// Resamples one (rows, cols) plane to the model grid with the model's image order and stores it as channel
    /// `channel` of batch item `b` of the engine input.
    private func place(_ plane: [Float], rows: Int, cols: Int, channels: Int, at b: Int, channel: Int = 0) {
        let grid = rows == S && cols == S ? plane
            : Zoom.zoom(plane, height: rows, width: cols, toHeight: S, toWidth: S, order: pre.imageOrder.rawValue)
        let base = (b * channels + channel) * S * S
        input.replaceSubrange(base ..< base + S * S, with: grid)
    }

    /// Runs the engine on the first `n` items of the input buffer.
    private func run(_ n: Int, channels: Int) {
        let count = n * channels * S * S
        input.withUnsafeBufferPointer { (x: UnsafeBufferPointer<Float>) in
            let items = UnsafeBufferPointer<Float>(rebasing: x[0 ..< count])
            labels.withUnsafeMutableBufferPointer { (l: inout UnsafeMutableBufferPointer<UInt8>) in
                if probabilities.isEmpty {
                    engine.predict(items, batch: n, channels: channels, labels: l, probabilities: nil)
                    return
                }
                probabilities.withUnsafeMutableBufferPointer { (p: inout UnsafeMutableBufferPointer<Float>) in
                    engine.predict(items, batch: n, channels: channels, labels: l, probabilities: p)
                }
            }
        }
    }

    /// Batch item `b`'s label map back on a (rows, cols) plane: order 0, each label copied from its nearest sample.
    private func labelsBack(_ b: Int, rows: Int, cols: Int) -> [UInt8] {
        Zoom.zoomLabels(Array(labels[b * S * S ..< (b + 1) * S * S]), height: S, width: S, toHeight: rows, toWidth: cols)
    }

    /// Class `j`'s probabilities of batch item `b` on the model grid (S, S).
    private func probabilityPlane(_ b: Int, _ j: Int) -> [Float] {
        let base = (b * nc + j) * S * S
        return Array(probabilities[base ..< base + S * S])
    }

    /// A probability plane back on the input grid, with the label order (so argmax of the result is the mask).
    private func resampleBack(_ plane: [Float], rows: Int, cols: Int) -> [Float] {
        rows == S && cols == S ? plane : Zoom.zoom(plane, height: S, width: S, toHeight: rows, toWidth: cols, order: pre.labelOrder.rawValue)
    }

    /// Overlays of the chosen slices (array indices along the input axis the model slices), named NAME_sliceNNNN.png.
    private func writeVolumeOverlays(_ c: RunCase, volume: NIfTIVolume, layout: VolumeLayout, addressing: SliceAddressing,
                                     mask: [UInt8], folder: String) throws -> [String] {
        let (K, R, C) = (addressing.slices, addressing.rows, addressing.cols)
        func maskSlice(_ k: Int) -> [UInt8] {
            var slice = [UInt8](repeating: 0, count: R * C)
            mask.withUnsafeBufferPointer { m in slice.withUnsafeMutableBufferPointer { addressing.gather(m, slice: k, into: $0) } }
            return slice
        }
        // Array index along the sliced axis <-> canonical slice index.
        func canonicalIndex(_ i: Int) -> Int { layout.flips[0] ? K - 1 - i : i }
        var chosen: [Int]
        switch options.overlaySlices {
        case .all: chosen = Array(0..<K)
        case .list(let l): chosen = l                      // checked against K before the case started
        case .auto:
            var best = K / 2, most = 0
            for i in 0..<K {
                let count = maskSlice(canonicalIndex(i)).reduce(0) { $0 + ($1 == 0 ? 0 : 1) }
                if count > most { most = count; best = i }
            }
            chosen = [best]
        }
        var written: [String] = []
        for i in chosen {
            let k = canonicalIndex(i)
            let path = CasePlanner.join(folder, c.name + String(format: "_slice%04d.png", i))
            let o = Overlay.picture(image: volume.slice(k, layout: layout), channels: 1, width: C, height: R,
                                    labels: maskSlice(k), window: overlayWindow, classNames: metadata.classNames)
            try PNGWriter.writeRGB(o.rgb, width: o.width, height: o.height, to: path)
            written.append(path)
        }
        return written
    }

    /// Every label present, with its name, voxel count, volume (nil for pictures) and mean input value: `sums`
    /// holds per input channel the sum of the input's values over each label's voxels (one channel: mean_intensity;
    /// three: mean_rgb).
    /// `finite`: per label the voxels whose values were summed (nil: all of them); a label with none has no mean.
    private func labelRecords(_ mask: [UInt8], voxelMillilitres: Double?, sums: [[Double]], finite: [Int]? = nil) -> [LabelRecord] {
        var counts = [Int](repeating: 0, count: 256)
        mask.withUnsafeBufferPointer { for v in $0 { counts[Int(v)] += 1 } }
        let names = metadata.classNames
        return counts.indices.filter { counts[$0] > 0 }.map { l in
            var r = LabelRecord(label: l, name: l < names.count ? names[l] : "label \(l)", voxels: counts[l],
                                volumeMl: voxelMillilitres.map { Double(counts[l]) * $0 })
            let n = finite?[l] ?? counts[l]
            guard n > 0 else { return r }
            let means = sums.map { $0[l] / Double(n) }
            guard means.allSatisfy(\.isFinite) else { return r }
            if means.count == 1 { r.meanIntensity = means[0] } else { r.meanRGB = means }
            return r
        }
    }
}
