// A volume's canonical slices (VolumeLayout: the model's slice, row and column axes) as plain arrays: the
// definition the run's SliceAddressing and the NIfTI reader's slice reads are tested against, and the whole-volume
// reorientation the orientation tests compare with nibabel's.
import SegmentImaging

extension VolumeLayout {
    /// Canonical slice `s` of `array` (shape (X, Y, Z), X fastest): R x C values, row-major.
    public func gatherSlice<T>(_ array: [T], arrayShape: [Int], slice s: Int) -> [T] {
        let (origin, steps) = addressing(arrayShape)
        let shape = canonicalShape(arrayShape)
        precondition(array.count == arrayShape.reduce(1, *) && s >= 0 && s < shape[0], "slice out of range")
        var out: [T] = []
        out.reserveCapacity(shape[1] * shape[2])
        array.withUnsafeBufferPointer { a in
            for r in 0..<shape[1] {
                let row = origin + s * steps[0] + r * steps[1]
                for c in 0..<shape[2] { out.append(a[row + c * steps[2]]) }
            }
        }
        return out
    }

    /// Writes canonical slice `s` (R x C, row-major) into `array` (shape (X, Y, Z), X fastest): the exact
    /// inverse of `gatherSlice`.
    public func scatterSlice<T>(_ slice: [T], slice s: Int, into array: inout [T], arrayShape: [Int]) {
        let (origin, steps) = addressing(arrayShape)
        let shape = canonicalShape(arrayShape)
        precondition(array.count == arrayShape.reduce(1, *) && s >= 0 && s < shape[0]
                     && slice.count == shape[1] * shape[2], "slice out of range")
        array.withUnsafeMutableBufferPointer { a in
            for r in 0..<shape[1] {
                let row = origin + s * steps[0] + r * steps[1]
                for c in 0..<shape[2] { a[row + c * steps[2]] = slice[r * shape[2] + c] }
            }
        }
    }

    /// The whole canonical volume (S, R, C), C fastest.
    public func toCanonical<T>(_ array: [T], arrayShape: [Int]) -> [T] {
        let S = canonicalShape(arrayShape)[0]
        return (0..<S).flatMap { gatherSlice(array, arrayShape: arrayShape, slice: $0) }
    }

    /// The array (X, Y, Z), X fastest, of a canonical volume (S, R, C): the exact inverse of `toCanonical`.
    public func fromCanonical<T>(_ canonical: [T], arrayShape: [Int]) -> [T] {
        let shape = canonicalShape(arrayShape)
        precondition(canonical.count == shape.reduce(1, *) && !canonical.isEmpty, "canonical volume of the wrong size")
        var array = [T](repeating: canonical[0], count: canonical.count)
        let n = shape[1] * shape[2]
        for s in 0..<shape[0] {
            scatterSlice(Array(canonical[s * n ..< (s + 1) * n]), slice: s, into: &array, arrayShape: arrayShape)
        }
        return array
    }
}
