import XCTest
import CBLAS
import CPNG
import CNIfTI

/// Each system library is called for real, so a broken install or link line fails here first.
final class ShimTests: XCTestCase {
    func testOpenBLASSgemmComputesAProduct() {
        // A (2x3) @ B (3x2), row-major: [[1,2,3],[4,5,6]] @ [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [7, 8, 9, 10, 11, 12]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [58, 64, 139, 154])
    }

    func testLibPNGReportsItsVersion() {
        let v = String(cString: png_get_libpng_ver(nil))
        XCTAssertTrue(v.hasPrefix("1.6"), "libpng version \(v)")
    }

    func testLibNIfTIWritesAndReadsAVolume() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shim-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("v.nii.gz").path
        var dims: [Int64] = [3, 4, 5, 6, 1, 1, 1, 1]
        guard let img = nifti_make_new_nim(&dims, Int32(NIFTI_TYPE_INT16), 1) else { return XCTFail("nifti_make_new_nim") }
        let data = img.pointee.data.assumingMemoryBound(to: Int16.self)
        for i in 0..<120 { data[i] = Int16(i - 60) }
        XCTAssertEqual(nifti_set_filenames(img, path, 0, 1), 0)
        nifti_image_write(img)
        nifti_image_free(img)
        guard let back = nifti_image_read(path, 1) else { return XCTFail("nifti_image_read \(path)") }
        defer { nifti_image_free(back) }
        XCTAssertEqual(back.pointee.nx, 4); XCTAssertEqual(back.pointee.ny, 5); XCTAssertEqual(back.pointee.nz, 6)
        let d = back.pointee.data.assumingMemoryBound(to: Int16.self)
        XCTAssertEqual((0..<120).map { d[$0] }, (0..<120).map { Int16($0 - 60) })
    }
}
