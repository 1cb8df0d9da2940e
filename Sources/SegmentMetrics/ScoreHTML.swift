// `segment score --html`: the report as one self-contained page (SegmentReports renders it), with each case's
// prediction and reference outlines drawn over its image (`--images DIR`) or on black.
//
// The slice drawn of a volume is the one along the third array axis with the most reference foreground (the most
// prediction foreground when the reference is empty; the middle one when both are), shown with the first array
// axis across and the second upward (as matplotlib's imshow(slice.T, origin="lower")).
import Foundation
import SegmentCases
import SegmentCore
import SegmentImaging
import SegmentReports

enum ScoreHTML {
    /// The page of `report`. `images`: a folder of the cases' images, matched by case name (nil: outlines on black).
    static func page(_ report: ScoreReport, images: String?, pngValues: PNGValues, budget: MemoryBudget, threads: Int) throws -> String {
        var imageFiles: [String: CaseFile] = [:]
        if let images {
            for f in try CaseDiscovery.images(in: images) { imageFiles[f.name] = f }
        }
        let cases = report.metricPerCase
        var pictures = [(HTMLPicture?, String?)](repeating: (nil, nil), count: cases.count)
        let lock = NSLock()
        var next = 0
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, cases.count))) { _ in
            while true {
                lock.lock(); let k = next; next += 1; lock.unlock()
                if k >= cases.count { return }
                let c = cases[k]
                let result: (HTMLPicture?, String?)
                do {
                    result = (try picture(c, image: imageFiles[c.name], imagesFolder: images, pngValues: pngValues, budget: budget), nil)
                } catch {
                    result = (nil, "no overlay: \((error as? SegmentError)?.description ?? "\(error)")")
                }
                lock.lock(); pictures[k] = result; lock.unlock()
            }
        }
        let keys = report.classKeys
        let classes = keys.enumerated().map { i, key in
            ScorePage.Class(key: key, name: report.classNames[key] ?? (key.contains("+") ? "region \(key)" : "label \(key)"),
                            colour: Overlay.palette[i % Overlay.palette.count], mean: report.mean[key] ?? [:])
        }
        let pageCases = cases.enumerated().map { i, c in
            ScorePage.Case(name: c.name,
                           values: Dictionary(uniqueKeysWithValues: keys.compactMap { key in
                               c.metrics[key].map { s in (key, Dictionary(uniqueKeysWithValues: pageMetrics.map { ($0, s.value($0)) })) }
                           }),
                           picture: pictures[i].0, pictureNote: pictures[i].1)
        }
        var meta = ["\(report.tool); policy \(report.policy.mode.rawValue), worst distance \(report.policy.worstDistance.rawValue); "
                    + "distances in \(report.units)"]
        if let ignore = report.ignoreLabel { meta.append("ignore label \(ignore)") }
        if !report.unmatchedPredictions.isEmpty {
            meta.append("predictions matching no reference (not scored): " + report.unmatchedPredictions.joined(separator: ", "))
        }
        let legend = "Overlays: reference outline green, prediction outline magenta, white where they coincide; "
            + (images == nil ? "on black (give --images DIR to draw the images). " : "over the image from \(images!) (grey levels: its slice's min to max). ")
            + "A volume shows the slice along its third array axis with the most reference foreground, first axis across, second upward."
        let page = ScorePage(title: "segment score: \(cases.count) case(s)", meta: meta, classes: classes, metrics: pageMetrics,
                             units: report.units, cases: pageCases,
                             failures: report.failedCases.map { ($0.name, $0.error) }, definitions: report.definitions,
                             pictureLegend: legend)
        return page.render()
    }

    /// The metrics of the page's table and summary.
    static let pageMetrics = ["Dice", "IoU", "HD", "HD95", "ASSD"]

    /// The overlay of one case: its reference and prediction read again (a missing prediction is empty, as scored),
    /// the slice chosen, drawn over the image when there is one of the same grid.
    static func picture(_ c: CaseScore, image: CaseFile?, imagesFolder: String?, pngValues: PNGValues, budget: MemoryBudget) throws -> HTMLPicture {
        let ref = try LabelImage.read(c.referenceFile, pngValues: pngValues, budget: budget)
        let pred = c.predictionMissing || !FileManager.default.fileExists(atPath: c.predictionFile)
            ? LabelImage(labels: .empty(shape: ref.labels.shape), spacing: ref.spacing, unit: ref.unit, affine: ref.affine)
            : try LabelImage.read(c.predictionFile, pngValues: pngValues, budget: budget)
        let shape = ref.labels.shape
        guard pred.labels.shape == shape else {
            throw CaseError(message: "the prediction's shape \(pred.labels.shape) differs from the reference's \(shape)")
        }
        let (W, H) = (shape[0], shape[1])
        let depth = shape.count == 3 ? shape[2] : 1
        let plane = W * H
        // The slice: most reference foreground, else most prediction foreground, else the middle.
        func foreground(_ l: [UInt16], _ z: Int) -> Int {
            var n = 0
            for i in (z * plane)..<((z + 1) * plane) where l[i] != 0 { n += 1 }
            return n
        }
        var z = depth / 2
        if depth > 1 {
            let r = (0..<depth).map { foreground(ref.labels.labels, $0) }
            let p = (0..<depth).map { foreground(pred.labels.labels, $0) }
            if let best = r.indices.max(by: { r[$0] < r[$1] || (r[$0] == r[$1] && $0 > $1) }), r[best] > 0 { z = best }
            else if let best = p.indices.max(by: { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }), p[best] > 0 { z = best }
        }
        // (H, W) row-major; a volume's second axis upward (row `row` shows array y = H - 1 - row), a picture's as stored.
        let upward = shape.count == 3
        func arrayY(_ row: Int) -> Int { upward ? H - 1 - row : row }
        func rows<T>(_ v: [T]) -> [T] {
            var out = [T](); out.reserveCapacity(plane)
            for row in 0..<H { let y = arrayY(row); out += v[(z * plane + y * W)..<(z * plane + y * W + W)] }
            return out
        }
        let refPlane = rows(ref.labels.labels), predPlane = rows(pred.labels.labels)
        var pixels: [Float]? = nil
        var channels = 1
        var note = ""
        if let image {
            if image.kind == .nifti {
                let v = try NIfTIVolume.read(image.path, budget: budget)
                let s = v.shape
                if s[0] == W && s[1] == H && s[2] == depth {
                    var out = [Float](); out.reserveCapacity(plane)
                    for row in 0..<H { for x in 0..<W { out.append(Float(v.value(x, arrayY(row), z))) } }
                    pixels = out
                } else {
                    note = " (image \(image.path) has shape \(s.prefix(3).map(String.init).joined(separator: " x ")), not the masks'; drawn on black)"
                }
            } else {
                let p = image.kind == .jpeg ? try JPEG.read(image.path, budget: budget) : try PNGImage.read(image.path, budget: budget)
                if p.width == W && p.height == H && depth == 1 {
                    pixels = p.pixels; channels = p.channels
                } else {
                    note = " (image \(image.path) is \(p.width) x \(p.height), not the masks'; drawn on black)"
                }
            }
        } else if let imagesFolder {
            note = " (no image of this case in \(imagesFolder); drawn on black)"
        }
        let o = Overlay.comparison(image: pixels, channels: channels, width: W, height: H, reference: refPlane, prediction: predPlane)
        let png = try PNGWriter.encodeRGB(o.rgb, width: o.width, height: o.height, what: "the overlay of case \(c.name)")
        let caption = (shape.count == 3 ? "slice \(z) of \(depth)" : "\(W) x \(H)") + note
        return HTMLPicture(caption: caption, png: png, width: o.width, height: o.height)
    }
}
