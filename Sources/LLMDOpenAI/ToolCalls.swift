import LLMDProtocol

/// The tool calls of a streamed reply, put together from their pieces as OpenAI streams
/// them: each delta names a call by `index`; its first piece has the `id`, `type` and the
/// function's `name`, and later pieces add to the function's `arguments`.
public struct ToolCallAccumulator: Sendable, Equatable {
    private var calls: [Int64: JSONObject] = [:]

    public init() {}

    public var isEmpty: Bool { calls.isEmpty }

    /// Adds a delta's `tool_calls`; pieces that are not objects with an index are skipped.
    public mutating func add(_ pieces: JSONValue) {
        for piece in pieces.arrayValue ?? [] {
            guard let object = piece.objectValue, let index = object["index"]?.intValue else { continue }
            var call = calls[index] ?? ["index": .int(index)]
            for member in object where member.key != "function" && member.key != "index" && !member.value.isNull {
                call[member.key] = member.value
            }
            if let function = object["function"]?.objectValue {
                var merged = call["function"]?.objectValue ?? [:]
                if let name = function["name"]?.stringValue { merged["name"] = .string(name) }
                if let arguments = function["arguments"]?.stringValue {
                    merged["arguments"] = .string((merged["arguments"]?.stringValue ?? "") + arguments)
                }
                call["function"] = .object(merged)
            }
            calls[index] = call
        }
    }

    /// The calls, in index order, as a whole response's `message.tool_calls` has them.
    public var toolCalls: JSONValue? {
        guard !calls.isEmpty else { return nil }
        return .array(
            calls.sorted { $0.key < $1.key }.map { _, call in
                var call = call
                call["index"] = nil
                return .object(call)
            })
    }
}
