// Small DICOM Part 10 files for the tests, written byte by byte (explicit VR little endian), so a test states
// exactly what a file holds: no library of ours or DCMTK's stands between the test and the bytes it reads back.
import Foundation

/// One data element. `value` is the raw value; a sequence holds items, each a list of elements.
public struct Element {
    public let tag: UInt32
    public let vr: String
    public let value: Data
    public let items: [[Element]]?

    public init(_ tag: UInt32, _ vr: String, _ value: Data) { self.tag = tag; self.vr = vr; self.value = value; items = nil }
    public init(_ tag: UInt32, items: [[Element]]) { self.tag = tag; vr = "SQ"; value = Data(); self.items = items }

    /// A string value (UI padded with NUL, others with a space, to an even length).
    public static func string(_ tag: UInt32, _ vr: String, _ s: String) -> Element {
        var d = Data(s.utf8)
        if d.count % 2 == 1 { d.append(vr == "UI" ? 0 : 0x20) }
        return Element(tag, vr, d)
    }
    /// A decimal string of several values ("DS", backslash-separated).
    public static func decimals(_ tag: UInt32, _ values: [Double]) -> Element {
        string(tag, "DS", values.map { v in v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(v) }.joined(separator: "\\"))
    }
    public static func us(_ tag: UInt32, _ v: Int) -> Element {
        var x = UInt16(v).littleEndian
        return Element(tag, "US", Data(bytes: &x, count: 2))
    }
    public static func pixels16(_ values: [UInt16]) -> Element {
        Element(0x7FE0_0010, "OW", values.withUnsafeBytes { Data($0) })
    }
}

public enum DICOMTestFiles {
    static let longVRs: Set<String> = ["OB", "OW", "OF", "SQ", "UT", "UN"]

    static func encode(_ elements: [Element]) -> Data {
        var out = Data()
        func u16(_ v: UInt16) { var x = v.littleEndian; out.append(Data(bytes: &x, count: 2)) }
        func u32(_ v: UInt32) { var x = v.littleEndian; out.append(Data(bytes: &x, count: 4)) }
        for e in elements.sorted(by: { $0.tag < $1.tag }) {
            u16(UInt16(e.tag >> 16)); u16(UInt16(e.tag & 0xFFFF))
            out.append(Data(e.vr.utf8))
            let body: Data
            if let items = e.items {
                var b = Data()
                for item in items {
                    let content = encode(item)
                    var head = Data()
                    for v: UInt16 in [0xFFFE, 0xE000] { var x = v.littleEndian; head.append(Data(bytes: &x, count: 2)) }
                    var n = UInt32(content.count).littleEndian
                    head.append(Data(bytes: &n, count: 4))
                    b.append(head); b.append(content)
                }
                body = b
            } else {
                body = e.value
            }
            if longVRs.contains(e.vr) { u16(0); u32(UInt32(body.count)) } else { u16(UInt16(body.count)) }
            out.append(body)
        }
        return out
    }

    /// A Part 10 file: preamble, "DICM", the file meta group (explicit VR little endian) and `dataset`.
    public static func part10(sopClass: String, sopInstance: String, _ dataset: [Element]) -> Data {
        let meta = encode([
            Element(0x0002_0001, "OB", Data([0, 1])),
            .string(0x0002_0002, "UI", sopClass),
            .string(0x0002_0003, "UI", sopInstance),
            .string(0x0002_0010, "UI", "1.2.840.10008.1.2.1"),
        ])
        var length = UInt32(meta.count).littleEndian
        var out = Data(count: 128)
        out.append(Data("DICM".utf8))
        out.append(encode([Element(0x0002_0000, "UL", Data(bytes: &length, count: 4))]))
        out.append(meta)
        out.append(encode(dataset + [.string(0x0008_0016, "UI", sopClass), .string(0x0008_0018, "UI", sopInstance)]))
        return out
    }

    /// A single-frame CT slice: `pixels` row-major (rows x columns), 16 bits allocated.
    public static func ctSlice(series: String, instance: Int, position: [Double], orientation: [Double] = [1, 0, 0, 0, 1, 0],
                               spacing: [Double] = [1, 1], rows: Int, columns: Int, pixels: [UInt16],
                               bitsStored: Int = 12, signed: Bool = false, slope: Double = 1, intercept: Double = -1024,
                               extra: [Element] = []) -> Data {
        precondition(pixels.count == rows * columns)
        let base: [Element] = [
            .string(0x0008_0060, "CS", "CT"),
            .string(0x0020_000D, "UI", "1.2.826.0.1.3680043.10.99"),
            .string(0x0020_000E, "UI", series),
            .string(0x0020_0013, "IS", String(instance)),
            .decimals(0x0020_0032, position),
            .decimals(0x0020_0037, orientation),
            .string(0x0020_0052, "UI", "1.2.826.0.1.3680043.10.99.1"),
            .us(0x0028_0002, 1),
            .string(0x0028_0004, "CS", "MONOCHROME2"),
            .us(0x0028_0010, rows), .us(0x0028_0011, columns),
            .decimals(0x0028_0030, spacing),
            .us(0x0028_0100, 16), .us(0x0028_0101, bitsStored), .us(0x0028_0102, bitsStored - 1),
            .us(0x0028_0103, signed ? 1 : 0),
            .decimals(0x0028_1052, [intercept]), .decimals(0x0028_1053, [slope]),
            .pixels16(pixels),
        ]
        // `extra` replaces the base elements of the same tag.
        return part10(sopClass: "1.2.840.10008.5.1.4.1.1.2", sopInstance: "\(series).\(instance)",
                      base.filter { b in !extra.contains { $0.tag == b.tag } } + extra)
    }
}
