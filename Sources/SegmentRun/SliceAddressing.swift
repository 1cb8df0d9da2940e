// Moving canonical slices (the model's view, VolumeLayout) in and out of a volume array in the hot loops.
//
// SegmentImaging.VolumeLayout's gatherSlice/scatterSlice define the mapping; they are generic and not inlinable, so
// called from this module they run unspecialised (a metadata lookup per voxel: ~0.2 s per 512 x 512 slice). This is
// the same index arithmetic from the layout's public axes and flips, specialised by the compiler for UInt8 and
// Float here; SliceAddressingTests checks it against VolumeLayout for every permutation and flip.
import SegmentImaging

struct SliceAddressing {
    let rows: Int              // R: canonical row extent
    let cols: Int              // C: canonical column extent
    let slices: Int            // K: canonical slice extent
    private let origin: Int    // array offset of canonical voxel (0, 0, 0)
    private let steps: [Int]   // array offset step per canonical slice, row, column (negative when flipped)

    init(_ layout: VolumeLayout, arrayShape: [Int]) {
        precondition(arrayShape.count == 3, "a volume has 3 axes")
        let strides = [1, arrayShape[0], arrayShape[0] * arrayShape[1]]   // (X, Y, Z), X fastest
        var origin = 0, steps: [Int] = []
        for c in 0..<3 {
            let a = layout.axes[c], n = arrayShape[a]
            if layout.flips[c] { origin += (n - 1) * strides[a]; steps.append(-strides[a]) } else { steps.append(strides[a]) }
        }
        self.origin = origin; self.steps = steps
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
