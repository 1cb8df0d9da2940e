// DICOM: one file read as a series (what `segment FILE.dcm` and every file of a series folder go through): the Part 10
// check, DCMTK's parser behind SegmentDCMTK, the frames' geometry (functional groups included), the assembly checks
// and the pixel decoding (uncompressed, RLE, JPEG, JPEG-LS).
import SegmentDICOM

extension FuzzTarget {
    static let dicom = FuzzTarget(name: "dicom", summary: "DICOM Part 10 file read and assembled as a series") { bytes in
        withScratchFile("input.dcm", bytes) { path in
            guard DICOMFile.isPart10(path), let series = attempt({ try SeriesDiscovery.series(ofFile: path) }) else { return }
            for s in series {
                guard let v = attempt({ try SeriesAssembly.assemble(s, budget: fuzzBudget) }) else { continue }
                sink(v.volume.floats().count)
            }
        }
    }
}
