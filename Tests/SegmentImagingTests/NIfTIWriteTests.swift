// Writing masks and float volumes on an input's grid, checked by reading them back with nibabel: the header
// fields of conventions.md are the input's bytes, the data description is a label map's, and a phantom lands on
// the same voxels (hence the same world coordinates).
import Foundation
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentImaging

final class NIfTIWriteTests: XCTestCase {
    /// nibabel's view of inputs and outputs written on their grids (raw headers, not nibabel's rewritten ones),
    /// for argument pairs (input, output), one JSON object per pair.
    static let compare = """
    import sys, json, numpy as np, nibabel as nib
    from nibabel.openers import ImageOpener
    def load(path):
        img = nib.load(path)
        with ImageOpener(path) as f:
            return img, img.header_class.from_fileobj(f)
    kept = ['pixdim', 'xyzt_units', 'qform_code', 'sform_code', 'quatern_b', 'quatern_c', 'quatern_d',
            'qoffset_x', 'qoffset_y', 'qoffset_z', 'srow_x', 'srow_y', 'srow_z', 'descrip', 'dim_info', 'toffset',
            'slice_start', 'slice_end', 'slice_duration', 'slice_code']
    def facts(a, b):
        inp, hi = load(a); out, ho = load(b)
        data = np.asanyarray(out.dataobj)
        return {
        'version': [type(inp).__name__, type(out).__name__],
        'dtype': data.dtype.name, 'bitpix': int(ho['bitpix']), 'intent': int(ho['intent_code']),
        'scl': [float(ho['scl_slope']), float(ho['scl_inter'])], 'cal': [float(ho['cal_min']), float(ho['cal_max'])],
        'different': [k for k in kept if not np.array_equal(hi[k], ho[k])],
        'dim_in': hi['dim'].tolist(), 'dim_out': ho['dim'].tolist(),
        'affine_equal': bool(np.array_equal(inp.affine, out.affine)),
        'qform_equal': bool(np.array_equal(hi.get_qform(), ho.get_qform())),
        'values': data.ravel(order='F').astype(float).tolist(),
        'gzip': open(b, 'rb').read(2) == b'\\x1f\\x8b',
        }
    args = sys.argv[1:]
    print(json.dumps([facts(args[i], args[i + 1]) for i in range(0, len(args), 2)]))
    """

    func nibabel(_ pairs: [(input: String, output: String)]) throws -> [[String: Any]] {
        let text = try TestSupport.python(Self.compare, pairs.flatMap { [$0.input, $0.output] })
        let results = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], text)
        XCTAssertEqual(results.count, pairs.count)
        return results
    }

    func nibabel(_ input: String, _ output: String) throws -> [String: Any] {
        try nibabel([(input, output)])[0]
    }

    /// A phantom: labels 1 and 2 in a block, 0 elsewhere, one voxel of label 3 at (1, 2, min(3, Z - 1)).
    func phantom(_ shape: [Int]) -> [UInt8] {
        var labels = [UInt8](repeating: 0, count: shape.reduce(1, *))
        for z in 0..<shape[2] { for y in 0..<shape[1] { for x in 0..<shape[0] {
            let i = x + shape[0] * (y + shape[1] * z)
            if x >= 2 && x < 5 && y >= 1 && y < 4 { labels[i] = UInt8(1 + (z % 2)) }
        } } }
        labels[1 + shape[0] * (2 + shape[1] * min(3, shape[2] - 1))] = 3
        return labels
    }

    func testMasksKeepTheInputHeaderAndGrid() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let manifest = try Fixtures.manifest("header")
        var written: [(input: String, output: String, header: NIfTIHeader, labels: [UInt8], ext: String)] = []
        for file in manifest["cases"] as! [String] {
            let input = try Fixtures.path("header/" + file)
            let header = try NIfTIHeader.read(input)
            let labels = phantom(header.shape)
            for ext in [".nii", ".nii.gz"] {
                let output = dir.appendingPathComponent(file + ".mask" + ext).path
                try header.writeMask(labels, to: output)
                written.append((input, output, header, labels, ext))
            }
        }
        XCTAssertEqual(written.count, 10)
        let results = try nibabel(written.map { ($0.input, $0.output) })
        for (w, r) in zip(written, results) {
            let (header, labels, ext, file) = (w.header, w.labels, w.ext, w.input)
            let versions = r["version"] as! [String]
            XCTAssertEqual(versions[0], versions[1], "\(file): NIfTI version changed")
            XCTAssertEqual(r["dtype"] as? String, "uint8", file)
            XCTAssertEqual(r["bitpix"] as? Int, 8, file)
            XCTAssertEqual(r["intent"] as? Int, 1002, file)   // NIFTI_INTENT_LABEL
            XCTAssertEqual(r["scl"] as? [Double], [1, 0], file)
            XCTAssertEqual(r["cal"] as? [Double], [0, 3], file)
            XCTAssertEqual(r["different"] as? [String], [], "\(file): header fields changed")
            XCTAssertEqual(r["affine_equal"] as? Bool, true, file)
            XCTAssertEqual(r["qform_equal"] as? Bool, true, file)
            XCTAssertEqual(r["gzip"] as? Bool, ext == ".nii.gz", file)
            var dimIn = r["dim_in"] as! [Int]
            if header.volumes > 1 { dimIn[0] = 3; dimIn[4] = 1 }   // one volume of a 4D input: a 3D mask
            XCTAssertEqual(r["dim_out"] as? [Int], dimIn, file)
            // The phantom is where it was written, in nibabel's array order.
            XCTAssertEqual((r["values"] as! [Double]).map { UInt8($0) }, labels, file)
        }
        // Our reader reads the masks back on the same grid.
        for w in written {
            let back = try NIfTIVolume.read(w.output)
            XCTAssertEqual(back.shape, w.header.shape)
            XCTAssertEqual(back.header.affine, w.header.affine)
            XCTAssertEqual(try back.labels(as: UInt8.self), w.labels)
        }
        // Nothing but the outputs in the folder: no temporary files left.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertTrue(names.allSatisfy { $0.contains(".mask.nii") && !$0.hasPrefix(".") }, "\(names)")
    }

    func testLabelsAbove255AreStoredAsUInt16AndSmallOnesAsUInt8() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let input = try Fixtures.path("header/oblique_be.nii")
        let header = try NIfTIHeader.read(input)
        var wide = phantom(header.shape).map(UInt16.init)
        wide[5] = 300
        let out16 = dir.appendingPathComponent("wide.nii.gz").path
        try header.writeMask(wide, to: out16)
        var r = try nibabel(input, out16)
        XCTAssertEqual(r["dtype"] as? String, "uint16")
        XCTAssertEqual(r["bitpix"] as? Int, 16)
        XCTAssertEqual(r["cal"] as? [Double], [0, 300])
        XCTAssertEqual((r["values"] as! [Double]).map { UInt16($0) }, wide)
        let narrow = phantom(header.shape).map(UInt16.init)
        let out8 = dir.appendingPathComponent("narrow.nii").path
        try header.writeMask(narrow, to: out8)
        r = try nibabel(input, out8)
        XCTAssertEqual(r["dtype"] as? String, "uint8")
        XCTAssertEqual((r["values"] as! [Double]).map { UInt16($0) }, narrow)
        // Our reader reads our masks back identically.
        XCTAssertEqual(try NIfTIVolume.read(out16).labels(as: UInt16.self), wide)
    }

    func testFloatVolumesAndNPYOnTheInputGrid() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let input = try Fixtures.path("header/sform_only_n2.nii.gz")
        let header = try NIfTIHeader.read(input)
        let C = 3
        let values = (0..<(header.voxelCount * C)).map { Float($0) / 7 }
        let output = dir.appendingPathComponent("probs.nii.gz").path
        try header.writeFloats(values, channels: C, to: output)
        let r = try nibabel(input, output)
        XCTAssertEqual(r["dtype"] as? String, "float32")
        XCTAssertEqual(r["version"] as? [String], ["Nifti2Image", "Nifti2Image"])
        XCTAssertEqual(r["affine_equal"] as? Bool, true)
        XCTAssertEqual(r["dim_out"] as? [Int], [4] + header.shape + [C, 1, 1, 1])
        XCTAssertEqual((r["values"] as! [Double]).map(Float.init), values)

        let npy = dir.appendingPathComponent("probs.npy").path
        let shape = header.shape + [C]
        try NPYWriter.writeFloat32(values, shape: shape, to: npy)
        let check = """
        import sys, json, numpy as np
        a = np.load(sys.argv[1])
        x, y, z, c = 1, 2, 3, 2
        print(json.dumps({'shape': list(a.shape), 'dtype': a.dtype.str, 'at': float(a[x, y, z, c]),
                          'flat': a.ravel(order='F').tolist()}))
        """
        let out = try TestSupport.python(check, [npy])
        let n = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        XCTAssertEqual(n["shape"] as? [Int], shape)
        XCTAssertEqual(n["dtype"] as? String, "<f4")
        let s = header.shape
        XCTAssertEqual(n["at"] as? Double, Double(values[1 + s[0] * (2 + s[1] * (3 + s[2] * 2))]))
        XCTAssertEqual((n["flat"] as! [Double]).map(Float.init), values)
    }

    func testUnwritableOutputsFailWithExitCode5AndLeaveNothing() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let header = try NIfTIHeader.read(Fixtures.path("header/no_transform.nii"))
        let labels = phantom(header.shape)
        // A missing folder.
        let missing = dir.appendingPathComponent("no/such/folder/mask.nii.gz").path
        XCTAssertThrowsError(try header.writeMask(labels, to: missing)) { error in
            XCTAssertEqual((error as? SegmentError)?.exitCode, .outputNotWritable, "\(error)")
            XCTAssertTrue("\(error)".contains(missing), "\(error)")
        }
        // The output name is an existing folder: the rename fails and the temporary file is removed.
        let folder = dir.appendingPathComponent("taken.nii")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        XCTAssertThrowsError(try header.writeMask(labels, to: folder.path)) { error in
            XCTAssertEqual((error as? SegmentError)?.exitCode, .outputNotWritable, "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["taken.nii"])
    }
}
