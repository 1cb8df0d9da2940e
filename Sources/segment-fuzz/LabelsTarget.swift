// Label maps as `segment score` reads them (NIfTI or PNG, chosen by the file name as score does), then scored
// against a shifted copy of themselves so the distance transforms run on what was read.
import SegmentImaging
import SegmentMetrics

extension FuzzTarget {
    static let labels = FuzzTarget(name: "labels", summary: "label image for score (PNG by signature, else NIfTI)") { bytes in
        let isPNG = bytes.count >= 4 && bytes[0] == 0x89 && bytes[1] == 0x50 && bytes[2] == 0x4E && bytes[3] == 0x47
        withScratchFile(isPNG ? "labels.png" : "labels.nii", bytes) { path in
            for values in [PNGValues.binary, .label] {
                guard let image = attempt({ try LabelImage.read(path, pngValues: values, budget: fuzzBudget) }) else { continue }
                scoreAgainstShifted(image, path: path)
                if !isPNG { break }   // pngValues only matters for PNG
            }
        }
    }
}

/// Scores `image` against itself shifted by one voxel along its first axis (small images only: scoring costs
/// time per voxel, and large grids add nothing a small one does not reach).
func scoreAgainstShifted(_ image: LabelImage, path: String) {
    let map = image.labels
    guard map.voxelCount <= 1 << 14 else { return }
    var shifted = map.labels
    shifted.insert(shifted.removeLast(), at: 0)
    var reference = image
    reference.labels = LabelMap(shape: map.shape, labels: shifted)
    for policy in [ScoringPolicy(), ScoringPolicy(mode: .swinUNet)] {
        var options = ScoreOptions()
        options.policy = policy
        options.budget = fuzzBudget
        attempt { try scorePrediction(image, against: reference, name: "case", predictionFile: path, referenceFile: path, options: options) }
    }
}
