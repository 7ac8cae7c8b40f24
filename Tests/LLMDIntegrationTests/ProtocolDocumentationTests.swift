import Foundation
import LLMDProtocol
import Testing

/// llmd-protocol(7) describes the protocol the code speaks: each method the code knows
/// has its section under METHODS and no other does, and ERROR CODES lists exactly the
/// codes `ErrorCode` names.
@Suite("Protocol documentation")
struct ProtocolDocumentationTests {
    /// The page's lines between section `name` and the next section.
    private func section(_ name: String) throws -> [Substring] {
        let page = try String(contentsOfFile: sourceRoot + "/man/llmd-protocol.7", encoding: .utf8)
        let lines = page.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: ".Sh \(name)"[...]) else { return [] }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix(".Sh ") } ?? lines.endIndex
        return Array(lines[(start + 1)..<end])
    }

    @Test("METHODS has a section for each method the code knows, and for no other")
    func methods() throws {
        let documented = try section("METHODS").filter { $0.hasPrefix(".Ss ") }.map { String($0.dropFirst(4)) }
        #expect(Set(documented) == Set(ProtocolMethod.allCases.map(\.rawValue)))
        #expect(documented.count == Set(documented).count, "a method described twice")
        // Each method is a type with its Params and Result, and only one.
        let typed = typedMethods.map { $0.method }
        #expect(Set(typed) == Set(ProtocolMethod.allCases) && typed.count == ProtocolMethod.allCases.count)
    }

    @Test("each method's section names every parameter its Params type reads")
    func parameters() throws {
        let lines = try section("METHODS")
        for method in typedMethods {
            guard let start = lines.firstIndex(of: ".Ss \(method.method.rawValue)"[...]) else {
                Issue.record("no section for \(method.method.rawValue)")
                continue
            }
            let end = lines[(start + 1)...].firstIndex { $0.hasPrefix(".Ss ") } ?? lines.endIndex
            // `.It Cm name`, `.It Cm params.name`, or a list: `.It Cm temperature , top_p`.
            let items = lines[start..<end].filter { $0.hasPrefix(".It Cm ") }.flatMap { line in
                line.dropFirst(7).split(separator: " ").filter { $0 != "," && $0 != "Cm" && $0 != "Ns" }
                    .map { String($0.hasPrefix("params.") ? $0.dropFirst(7) : $0) }
            }
            let missing = Set(method.parameterNames).subtracting(items)
            #expect(missing.isEmpty, "\(method.method.rawValue): parameters not described: \(missing.sorted())")
        }
    }

    @Test("ERROR CODES lists exactly the codes ErrorCode names")
    func errorCodes() throws {
        // The codes are the list's dotted names; nested lists name detail members.
        let code = try Regex(#"^\.It Cm ([a-z_]+\.[a-z_]+)$"#)
        let documented = try section("ERROR CODES").compactMap { line in
            String(line).firstMatch(of: code).map { String($0.output[1].substring!) }
        }
        let source = try String(contentsOfFile: sourceRoot + "/Sources/LLMDProtocol/ErrorCode.swift", encoding: .utf8)
        let named = try Regex(#"ErrorCode = "([a-z_]+\.[a-z_]+)""#)
        let codes = source.matches(of: named).map { String($0.output[1].substring!) }
        #expect(!codes.isEmpty)
        #expect(Set(documented) == Set(codes), "only documented: \(Set(documented).subtracting(codes)); only in code: \(Set(codes).subtracting(documented))")
    }
}
