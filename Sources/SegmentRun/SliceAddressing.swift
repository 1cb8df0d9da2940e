// Moving canonical slices (the model's view, VolumeLayout) in and out of a volume array in the hot loops.
//
// SegmentImaging.VolumeLayout defines the mapping (`addressing`: origin and steps); this walks it over raw buffers
// (no array per slice) in the run's hot loops. SliceAddressingTests checks it against the plain-array slices of
// Tests/ImagingTestSupport for every permutation and flip.
import SegmentImaging

struct SliceAddressing {
    let rows: Int              // R: canonical row extent
    let cols: Int              // C: canonical column extent
    let slices: Int            // K: canonical slice extent
    private let origin: Int    // array offset of canonical voxel (0, 0, 0)
    private let steps: [Int]   // array offset step per canonical slice, row, column (negative when flipped)

    init(_ layout: VolumeLayout, arrayShape: [Int]) {
        (origin, steps) = layout.addressing(arrayShape)
        (slices, rows, cols) = (arrayShape[layout.axes[0]], arrayShape[layout.axes[1]], arrayShape[layout.axes[2]])
    }

    /// Writes canonical slice `s` (R x C, row-major) into `array`.
    @inline(__always)
    func scatter<T>(_ slice: UnsafeBufferPointer<T>, slice s: Int, into array: UnsafeMutableBufferPointer<T>) {
        precondition(s >= 0 && s < slices && slice.count == rows * cols, "slice out of range")
        let (rowStep, colStep) = (steps[1], steps[2])
        for r in 0..<rows {
            var at = origin + s * steps[0] + r * rowStep
            for c in 0..<cols { array[at] = slice[r * cols + c]; at += colStep }
        }
    }

    /// Reads canonical slice `s` of `array` into `slice` (R x C, row-major).
    @inline(__always)
    func gather<T>(_ array: UnsafeBufferPointer<T>, slice s: Int, into slice: UnsafeMutableBufferPointer<T>) {
        precondition(s >= 0 && s < slices && slice.count == rows * cols, "slice out of range")
        let (rowStep, colStep) = (steps[1], steps[2])
        for r in 0..<rows {
            var at = origin + s * steps[0] + r * rowStep
            for c in 0..<cols { slice[r * cols + c] = array[at]; at += colStep }
        }
    }
}
