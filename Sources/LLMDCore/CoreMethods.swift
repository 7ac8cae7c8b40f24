import LLMDProtocol

/// The methods every daemon answers: `hello`, `ping`, `status`.
public enum CoreMethods {
    public static func register(in table: inout MethodTable, state: DaemonState) {
        table.register(.hello) { request, _ throws(ProtocolError) in
            if let version = try request.params.int("protocol"), version != ProtocolVersion.current {
                throw ProtocolError(
                    .unsupportedVersion,
                    "this llmd speaks protocol \(ProtocolVersion.current), the client asked for \(version)",
                    detail: ["supported": [.int(ProtocolVersion.current)]])
            }
            return [
                "protocol": .int(ProtocolVersion.current), "version": .string(LLMDVersion.string),
                "pid": .int(Int64(state.pid)),
            ]
        }
        table.register(.ping) { _, _ in
            ["pong": true, "time": .string(Timestamp.rfc3339(milliseconds: Timestamp.nowMilliseconds()))]
        }
        table.register(.status) { _, _ in
            state.statusResult()
        }
    }
}
