import Testing

@testable import LLMDProtocol

@Suite("Typed methods")
struct TypedMethodsTests {
    @Test("status's result goes to JSON and back as it was, under the names llmd-protocol(7) gives")
    func statusRoundTrip() throws {
        let status = StatusMethod.Result(
            version: "0.1.0", protocolVersion: 1, pid: 42, socket: "/run/llmd/llmd.sock", startedAt: "2026-12-07T21:00:00.000Z",
            uptimeMilliseconds: 1500, clients: 3, sessions: 2, requestsInFlight: 1, requestsServed: 9)
        #expect(try StatusMethod.Result(json: status.json) == status)
        #expect(status.json["uptime_ms"] == 1500 && status.json["requests_in_flight"] == 1 && status.json["started_at"] == "2026-12-07T21:00:00.000Z")
    }

    @Test("hello's parameters and result, and ping's result, go to JSON and back")
    func helloAndPing() throws {
        #expect(try HelloMethod.Params(json: ["protocol": 1]) == HelloMethod.Params(protocolVersion: 1))
        #expect(try HelloMethod.Params(json: [:]) == HelloMethod.Params())
        #expect(HelloMethod.Params().json == [:])
        let hello = HelloMethod.Result(protocolVersion: 1, version: "0.1.0", pid: 7)
        #expect(try HelloMethod.Result(json: hello.json) == hello)
        let ping = PingMethod.Result(time: "2026-12-07T21:00:00.000Z")
        #expect(ping.json["pong"] == true)
        #expect(try PingMethod.Result(json: ping.json) == ping)
    }

    @Test("a member missing or of the wrong type is named in the error")
    func missingMembers() {
        #expect(throws: ProtocolError.invalidParam("pid", expected: "an integer", got: nil)) {
            try HelloMethod.Result(json: ["protocol": 1, "version": "0.1.0"])
        }
        #expect(throws: ProtocolError.invalidParam("protocol", expected: "an integer", got: "one")) {
            try HelloMethod.Params(json: ["protocol": "one"])
        }
    }
}
