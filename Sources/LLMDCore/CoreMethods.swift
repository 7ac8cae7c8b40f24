import LLMDProtocol

/// The methods every daemon answers: `hello`, `ping`, `status`.
public enum CoreMethods {
    public static func register(in table: inout MethodTable, state: DaemonState) {
        table.register(HelloMethod.self) { params, _ throws(ProtocolError) in
            if let version = params.protocolVersion, version != ProtocolVersion.current {
                throw ProtocolError(
                    .unsupportedVersion,
                    "this llmd speaks protocol \(ProtocolVersion.current), the client asked for \(version)",
                    detail: ["supported": [.int(ProtocolVersion.current)]])
            }
            return HelloMethod.Result(protocolVersion: ProtocolVersion.current, version: LLMDVersion.string, pid: Int64(state.pid))
        }
        table.register(PingMethod.self) { _, _ in
            PingMethod.Result(time: Timestamp.rfc3339(milliseconds: Timestamp.nowMilliseconds()))
        }
        table.register(StatusMethod.self) { _, _ in
            state.status()
        }
    }
}
