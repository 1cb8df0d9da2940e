// What each foreground class is, in codes a DICOM SEG can carry (docs/FORMAT.md, `general.class_codes`): the
// segmented property type (SNOMED CT "Liver") and its category ("Anatomical Structure").
import Foundation
import SegmentCore

/// The codes of one foreground class.
public struct ClassCode: Equatable, Codable, Sendable {
    public var label: Int                // the class index in the mask, 1...num_classes - 1
    public var category: CodedConcept    // SegmentedPropertyCategoryCodeSequence
    public var type: CodedConcept        // SegmentedPropertyTypeCodeSequence

    public init(label: Int, category: CodedConcept, type: CodedConcept) {
        self.label = label; self.category = category; self.type = type
    }

    /// SNOMED CT categories (DICOM CID 7150).
    public static let anatomicalStructure = CodedConcept(value: "123037004", scheme: "SCT", meaning: "Anatomical Structure")
    public static let morphologicallyAltered = CodedConcept(value: "49755003", scheme: "SCT", meaning: "Morphologically Altered Structure")
    public static let tissue = CodedConcept(value: "85756007", scheme: "SCT", meaning: "Tissue")

    /// The category of known SNOMED CT types (DICOM CID 7151 and 7153 entries a liver or abdominal model may have), so
    /// `--class-code 1=SCT:10200004:Liver` needs no category. A type not listed needs its category spelled out.
    public static let knownCategories: [String: CodedConcept] = [
        "10200004": anatomicalStructure,    // Liver
        "78961009": anatomicalStructure,    // Spleen
        "64033007": anatomicalStructure,    // Kidney
        "15776009": anatomicalStructure,    // Pancreas
        "28231008": anatomicalStructure,    // Gallbladder
        "39607008": anatomicalStructure,    // Lung
        "80891009": anatomicalStructure,    // Heart
        "12738006": anatomicalStructure,    // Brain
        "108369006": morphologicallyAltered, // Neoplasm
        "4147007": morphologicallyAltered,   // Mass
        "52988006": morphologicallyAltered,  // Lesion
        "85756007": tissue,                  // Tissue
    ]

    /// The codes of the shipped liver model: liver and liver tumour (neoplasm).
    public static let liverModel: [ClassCode] = [
        ClassCode(label: 1, category: anatomicalStructure, type: CodedConcept(value: "10200004", scheme: "SCT", meaning: "Liver")),
        ClassCode(label: 2, category: morphologicallyAltered, type: CodedConcept(value: "108369006", scheme: "SCT", meaning: "Neoplasm")),
    ]

    /// Parses `--class-code LABEL=SCHEME:VALUE:MEANING[@SCHEME:VALUE:MEANING]`: the type, then optionally its category
    /// (needed unless the type is an SCT code of `knownCategories`). Returns the code or why the text is not one.
    public static func parse(_ text: String) -> Result<ClassCode, ClassCodeProblem> {
        func fail(_ why: String) -> Result<ClassCode, ClassCodeProblem> {
            .failure(ClassCodeProblem(reason: "\"\(text)\" \(why); write LABEL=SCHEME:VALUE:MEANING, e.g. 1=SCT:10200004:Liver, "
                + "with @SCHEME:VALUE:MEANING after it for the category of a type segment does not know"))
        }
        guard let eq = text.firstIndex(of: "="), let label = Int(text[..<eq].trimmingCharacters(in: .whitespaces)) else {
            return fail("does not start with a class number and =")
        }
        let rest = text[text.index(after: eq)...]
        let halves = rest.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        func concept(_ s: String) -> CodedConcept? {
            let parts = s.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            return parts.count == 3 ? CodedConcept(value: parts[1], scheme: parts[0], meaning: parts[2]) : nil
        }
        guard let type = concept(halves[0]) else { return fail("has no SCHEME:VALUE:MEANING type") }
        let category: CodedConcept
        if halves.count == 2 {
            guard let c = concept(halves[1]) else { return fail("has no SCHEME:VALUE:MEANING category after @") }
            category = c
        } else if type.scheme == "SCT", let c = knownCategories[type.value] {
            category = c
        } else {
            return fail("gives type \(type), whose category segment does not know: add it after @ (e.g. @SCT:123037004:Anatomical Structure)")
        }
        return .success(ClassCode(label: label, category: category, type: type))
    }

    /// The problems of `codes` for a model of `numClasses` classes, or nil: labels 1...numClasses-1, each once,
    /// codes DICOM can hold (CodedConcept.problem).
    public static func problem(_ codes: [ClassCode], numClasses: Int) -> String? {
        var seen = Set<Int>()
        for c in codes {
            guard (1..<max(numClasses, 1)).contains(c.label) else {
                return "gives codes to class \(c.label), but the foreground classes are 1...\(numClasses - 1)"
            }
            guard seen.insert(c.label).inserted else { return "gives class \(c.label) codes twice" }
            if let p = c.type.problem { return "class \(c.label)'s type \(c.type): \(p)" }
            if let p = c.category.problem { return "class \(c.label)'s category \(c.category): \(p)" }
        }
        return nil
    }

    /// The JSON stored under `general.class_codes`: an array of {label, category, type}, sorted by label.
    static func json(_ codes: [ClassCode]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(codes.sorted { $0.label < $1.label }), as: UTF8.self)
    }

    static func decode(_ json: String) -> [ClassCode]? { try? JSONDecoder().decode([ClassCode].self, from: Data(json.utf8)) }
}

/// Why a `--class-code` value is not one.
public struct ClassCodeProblem: Error, Equatable { public let reason: String }
