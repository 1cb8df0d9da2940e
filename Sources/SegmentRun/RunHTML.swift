// `segment run --html`: the run report as one self-contained page (SegmentReports renders it), with each case's
// mask drawn over its input.
//
// The pictures are drawn after the cases, from the files (the input, and the mask the case wrote or, for a case
// skipped by --continue, found), so the worker processes send back no pixels. A volume gets three orthogonal views:
// its chosen slices as --overlay draws them (--overlay-slices; auto: the slice with the most foreground), and the two
// planes across the slices through the centre of the mask's foreground (the middle of the volume when it is empty),
// resampled to the voxels' physical aspect, the slice index increasing upward.
import Foundation
import SegmentCases
import SegmentCore
import SegmentDICOM
import SegmentFormat
import SegmentImaging
import SegmentReports

enum RunHTML {
    /// The page of `report`; `cases` are the run's cases (the records' order).
    static func page(_ report: RunReport, cases: [RunCase], metadata: ModelMetadata, options o: RunOptions) -> String {
        let byName = Dictionary(cases.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let pageCases = report.cases.map { r -> RunPage.Case in
            var facts: [String] = []
            if let shape = r.shape { facts.append("shape " + shape.map(String.init).joined(separator: " x ")) }
            if let s = r.spacing { facts.append("spacing " + s.map { String(format: "%.4g", $0) }.joined(separator: " x ") + " mm") }
            if let k = r.slices { facts.append("\(k) slice(s) through the network in \(String(format: "%.2f", r.timeSeconds)) s") }
            for w in r.warnings ?? [] { facts.append("warning: " + w) }
            var pictures: [HTMLPicture] = [], note: String? = nil
            if r.status == .failed {
                note = "no pictures: the case failed"
            } else if byName[r.name]?.writesSEG == true {
                // A DICOM SEG is not read back; a series' NIfTI mask is drawn as any volume's.
                note = "no pictures: this series' mask is a DICOM SEG, not drawn here (its labels are listed above)"
            } else if let c = byName[r.name] {
                do { pictures = try draw(c, metadata: metadata, options: o) }
                catch { note = "no pictures: \((error as? SegmentError)?.description ?? "\(error)")" }
            }
            let labels = (r.labels ?? []).map {
                RunPage.Label(label: $0.label, name: $0.name, voxels: $0.voxels, volumeMl: $0.volumeMl,
                              meanIntensity: $0.meanIntensity.map { [$0] } ?? $0.meanRGB)
            }
            return RunPage.Case(name: r.name, input: r.input, output: r.output, status: r.status.rawValue, error: r.error,
                                facts: facts, labels: labels, pictures: pictures, pictureNote: note)
        }
        var meta = ["\(report.tool) \(report.toolVersion); model \(report.model.path) (checksum \(report.model.checksum)); "
                    + "classes " + report.model.classNames.joined(separator: ", ")]
        meta.append("started \(report.started), \(String(format: "%.1f", report.wallTimeSeconds)) s; exit code \(report.exitCode)")
        meta.append("command: " + report.commandLine.joined(separator: " "))
        let window = metadata.preprocessing.intensity == .window
            ? "grey levels from the model's window \(metadata.preprocessing.windowLo)...\(metadata.preprocessing.windowHi)"
            : "grey levels from each picture's min to max"
        let legend = "Masks drawn as a translucent fill with an opaque outline per label (\(window)). Volumes: the chosen "
            + "slice(s) and the two planes across the slices through the centre of the foreground, at the voxels' physical "
            + "aspect, slice index increasing upward. Volumes in ml from the header's voxel size; mean intensity: the "
            + "input's values over the label's voxels (HU for CT), on the input grid."
        return RunPage(title: "segment run: \(report.cases.count) case(s)", meta: meta, cases: pageCases, pictureLegend: legend).render()
    }

    /// The pictures of one case, drawn from its input and its mask file.
    static func draw(_ c: RunCase, metadata: ModelMetadata, options o: RunOptions) throws -> [HTMLPicture] {
        let pre = metadata.preprocessing
        let window: (lo: Float, hi: Float)? = pre.intensity == .window ? (Float(pre.windowLo), Float(pre.windowHi)) : nil
        let names = metadata.classNames
        func encode(_ p: (rgb: [UInt8], width: Int, height: Int), _ caption: String) throws -> HTMLPicture {
            HTMLPicture(caption: caption, png: try PNGWriter.encodeRGB(p.rgb, width: p.width, height: p.height,
                                                                         what: "the picture of case \(c.name)"),
                        width: p.width, height: p.height)
        }
        guard !c.kind.isPicture else {
            let picture = c.kind == .jpeg ? try JPEG.read(c.input, budget: o.memoryLimit) : try PNGImage.read(c.input, budget: o.memoryLimit)
            let maskImage = try PNGImage.read(c.output, budget: o.memoryLimit)
            guard maskImage.width == picture.width && maskImage.height == picture.height else {
                throw RunError.usage("the mask \(c.output) is \(maskImage.width) x \(maskImage.height), the input \(picture.width) x \(picture.height)")
            }
            // A binary mask (0/255) is label 1 where not 0; a label mask holds the labels.
            let mask = try maskImage.labels().map { $0 == 0 ? UInt8(0) : $0 == 255 && names.count <= 2 ? 1 : UInt8(min($0, 255)) }
            let p = Overlay.picture(image: picture.pixels, channels: picture.channels, width: picture.width, height: picture.height,
                                    labels: mask, window: window, classNames: names)
            return [try encode(p, "\(picture.width) x \(picture.height)")]
        }
        let volume: NIfTIVolume
        switch c.source {
        case .series(let s): volume = try SeriesAssembly.assemble(s, budget: o.memoryLimit).volume
        case .image: volume = try NIfTIVolume.read(c.input, volume: o.volume, budget: o.memoryLimit)
        }
        let maskVolume = try NIfTIVolume.read(c.output, budget: o.memoryLimit)
        let header = volume.header
        guard maskVolume.shape.prefix(3) == header.shape.prefix(3) else {
            throw RunError.usage("the mask \(c.output) has shape \(maskVolume.shape), the input \(header.shape)")
        }
        let mask: [UInt8] = try maskVolume.labels(as: UInt8.self)            // (X, Y, Z), X fastest
        let layout = try VolumeLayout.forModel(
            sliceAxis: pre.sliceAxis, rowAxis: pre.rowAxis, colAxis: pre.colAxis, orientation: pre.orientation,
            volumeAxisCodes: pre.orientation.isEmpty ? "" : try header.axisCodes, path: c.input)
        let shape = header.shape
        let addressing = SliceAddressing(layout, arrayShape: shape)
        let (K, R, C) = (addressing.slices, addressing.rows, addressing.cols)
        let (origin, steps) = layout.addressing(shape)
        // Voxel size along the canonical slice, row and column axes.
        let size = layout.axes.map { header.spacing[$0] }
        func offset(_ k: Int, _ r: Int, _ col: Int) -> Int { origin + k * steps[0] + r * steps[1] + col * steps[2] }
        func value(_ at: Int) -> Float {
            Float(volume.value(at % shape[0], (at / shape[0]) % shape[1], at / (shape[0] * shape[1])))
        }
        func maskSlice(_ k: Int) -> [UInt8] {
            var slice = [UInt8](repeating: 0, count: R * C)                  // (R, C)
            mask.withUnsafeBufferPointer { m in slice.withUnsafeMutableBufferPointer { addressing.gather(m, slice: k, into: $0) } }
            return slice
        }
        func canonicalIndex(_ i: Int) -> Int { layout.flips[0] ? K - 1 - i : i }

        // Foreground per canonical slice and its centre (canonical row and column).
        var perSlice = [Int](repeating: 0, count: K)
        var sumR = 0.0, sumC = 0.0, total = 0
        for k in 0..<K {
            let m = maskSlice(k)
            for r in 0..<R { for col in 0..<C where m[r * C + col] != 0 { perSlice[k] += 1; sumR += Double(r); sumC += Double(col) } }
            total += perSlice[k]
        }
        let (centreR, centreC) = total == 0 ? (R / 2, C / 2) : (Int((sumR / Double(total)).rounded()), Int((sumC / Double(total)).rounded()))

        // The chosen slices, as array indices along the sliced axis (as --overlay-slices counts them).
        var chosen: [Int]
        switch o.overlaySlices {
        case .all: chosen = Array(0..<K)
        case .list(let l): chosen = l.filter { $0 < K }
        case .auto:
            var best = K / 2, most = 0
            for i in 0..<K where perSlice[canonicalIndex(i)] > most { most = perSlice[canonicalIndex(i)]; best = i }
            chosen = [best]
        }
        var pictures: [HTMLPicture] = []
        for i in chosen {
            let k = canonicalIndex(i)
            let (img, lab) = aspect(volume.slice(k, layout: layout), maskSlice(k), rows: R, cols: C, rowSize: size[1], colSize: size[2])
            let p = Overlay.picture(image: img.values, channels: 1, width: img.cols, height: img.rows, labels: lab,
                                    window: window, classNames: names)
            pictures.append(try encode(p, "slice \(i) of \(K)"))
        }
        // The planes across the slices: row `centreR` (K x C) and column `centreC` (K x R), slice index upward.
        for (fixedRow, across, acrossSize, label) in [(true, C, size[2], "row \(centreR)"), (false, R, size[1], "column \(centreC)")] {
            var img = [Float](repeating: 0, count: K * across), lab = [UInt8](repeating: 0, count: K * across)   // (K, across)
            for line in 0..<K {
                let k = K - 1 - line
                for a in 0..<across {
                    let at = fixedRow ? offset(k, centreR, a) : offset(k, a, centreC)
                    img[line * across + a] = value(at)
                    lab[line * across + a] = mask[at]
                }
            }
            let (i, l) = aspect(img, lab, rows: K, cols: across, rowSize: size[0], colSize: acrossSize)
            let p = Overlay.picture(image: i.values, channels: 1, width: i.cols, height: i.rows, labels: l, window: window,
                                    classNames: names)
            pictures.append(try encode(p, "across the slices at \(label)"))
        }
        return pictures
    }

    /// A plane of `rows` x `cols` voxels of size rowSize x colSize (mm) resampled along its rows so that a pixel is
    /// square (image linear, labels nearest), at most 8 times as many rows.
    static func aspect(_ image: [Float], _ labels: [UInt8], rows: Int, cols: Int, rowSize: Double, colSize: Double)
        -> (image: (values: [Float], rows: Int, cols: Int), labels: [UInt8]) {
        let ratio = rowSize > 0 && colSize > 0 && rowSize.isFinite && colSize.isFinite ? rowSize / colSize : 1
        let target = max(1, min(8 * rows, Int((Double(rows) * ratio).rounded())))
        guard target != rows else { return ((image, rows, cols), labels) }
        return ((Zoom.zoom(image, height: rows, width: cols, toHeight: target, toWidth: cols, order: 1), target, cols),
                Zoom.zoomLabels(labels, height: rows, width: cols, toHeight: target, toWidth: cols))
    }
}
