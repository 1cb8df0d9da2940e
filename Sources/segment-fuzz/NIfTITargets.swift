// NIfTI-1 and NIfTI-2, plain or gzip: the reader `segment run` and `segment score` use, then what run does with a
// volume (orientation, slices in a model's layout, whole float and label arrays).
import CNIfTI
import Foundation
import SegmentImaging

extension FuzzTarget {
    /// The input is the file as stored: plain, or gzip when it starts with 1f 8b (so damaged gzip streams are
    /// fuzzed here).
    static let nifti = FuzzTarget(name: "nifti", summary: "NIfTI-1/2 file as stored (.nii, or gzip by content)") { bytes in
        withScratchFile("input.nii", bytes) { readNIfTI($0) }
    }

    /// The input is the uncompressed file; the harness gzips it, so mutations reach the header and voxels through
    /// the gzip path (sizes known only by decompressing, seeking inside a stream).
    static let niftiGz = FuzzTarget(name: "nifti-gz", summary: "NIfTI-1/2 file, gzipped by the harness (.nii.gz)") { bytes in
        let path = scratchFolder + "/input.nii.gz"
        guard let fp = znzopen(path, "wb", 1) else { fatalError("segment-fuzz: cannot write \(path)") }
        var file: znzFile? = fp
        if bytes.count > 0 { _ = znzwrite(bytes.baseAddress, 1, bytes.count, file) }
        Xznzclose(&file)
        defer { unlink(path) }
        readNIfTI(path)
    }
}

func readNIfTI(_ path: String) {
    guard let header = attempt({ try NIfTIHeader.read(path) }) else { return }
    let codes = attempt { try header.axisCodes }
    guard let volume = attempt({ try NIfTIVolume.read(path, volume: header.volumes > 1 ? header.volumes - 1 : nil, budget: fuzzBudget) })
    else { return }
    let s = volume.shape
    sink(volume.value(s[0] - 1, s[1] - 1, s[2] - 1))
    if let codes, let layout = attempt({ try VolumeLayout.forModel(sliceAxis: 2, rowAxis: 0, colAxis: 1, orientation: "RAS",
                                                                   volumeAxisCodes: codes, path: path) }) {
        let slices = layout.canonicalShape(s)[0]
        sink(volume.slice(slices - 1, layout: layout))
    }
    sink(volume.slice(0, layout: VolumeLayout()))
    sink(volume.floats())
    attempt { try volume.labels(as: UInt8.self) }
    attempt { try volume.labels(as: UInt64.self) }
}
