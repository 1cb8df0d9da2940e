// A coded concept (DICOM's Code Sequence Macro): shared by the model file, which stores each class's codes, and the
// DICOM SEG writer, which writes them.

/// A code from a coding scheme, e.g. SNOMED CT ("SCT") 10200004 "Liver".
public struct CodedConcept: Equatable, Hashable, Codable, Sendable, CustomStringConvertible {
    public var value: String
    public var scheme: String
    public var meaning: String

    public init(value: String, scheme: String, meaning: String) {
        self.value = value; self.scheme = scheme; self.meaning = meaning
    }

    /// "SCT:10200004:Liver", the form of `segment convert --class-code`.
    public var description: String { "\(scheme):\(value):\(meaning)" }

    /// Why this code cannot go into a DICOM Code Sequence, or nil: CodeValue and CodingSchemeDesignator are SH (at most
    /// 16 characters, no backslash), CodeMeaning is LO (at most 64, no backslash); none may be empty or hold control
    /// characters.
    public var problem: String? {
        func bad(_ s: String, _ limit: Int, _ what: String) -> String? {
            if s.isEmpty { return "its \(what) is empty" }
            if s.count > limit { return "its \(what) \"\(s)\" has \(s.count) characters, more than DICOM's \(limit)" }
            if s.contains("\\") || s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                return "its \(what) \"\(s)\" holds a backslash or a control character"
            }
            return nil
        }
        return bad(value, 16, "code value") ?? bad(scheme, 16, "coding scheme") ?? bad(meaning, 64, "meaning")
    }
}
