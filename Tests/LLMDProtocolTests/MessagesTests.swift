import Testing

@testable import LLMDProtocol

@Suite("Protocol messages")
struct MessagesTests {
    private func decode(_ line: String) -> Result<Request, Request.DecodingFailure> {
        Request.decode(line: Array(line.utf8))
    }

    @Test("a request decodes with integer or string ids and optional params")
    func requests() throws {
        #expect(try decode(#"{"id":7,"method":"status"}"#).get() == Request(id: .int(7), method: "status"))
        #expect(
            try decode(#"{"id":"a","method":"hello","params":{"protocol":1}}"#).get()
                == Request(id: .string("a"), method: "hello", params: ["protocol": 1]))
        #expect(try decode(#"{"id":1,"method":"ping","params":null,"extra":true}"#).get().params.isEmpty)
    }

    @Test(
        "malformed requests get named errors, with the id when it could be read",
        arguments: [
            ("not json", nil, ErrorCode.malformedJSON),
            ("[1]", nil, .invalidRequest),
            (#"{"method":"ping"}"#, nil, .invalidRequest),
            (#"{"id":1.5,"method":"ping"}"#, nil, .invalidRequest),
            (#"{"id":true,"method":"ping"}"#, nil, .invalidRequest),
            (#"{"id":3}"#, RequestID.int(3), .invalidRequest),
            (#"{"id":3,"method":7}"#, .int(3), .invalidRequest),
            (#"{"id":"q","method":"ping","params":[]}"#, .string("q"), .invalidRequest),
        ] as [(String, RequestID?, ErrorCode)])
    func badRequests(line: String, id: RequestID?, code: ErrorCode) {
        guard case .failure(let failure) = decode(line) else {
            Issue.record("\(line) decoded")
            return
        }
        #expect(failure.id == id)
        #expect(failure.error.code == code)
    }

    @Test("an integer parameter is an integer as written: 2.0, 1e3 and 1e-400 are floats and refused")
    func integerParameters() throws {
        let params = try #require(
            try JSONParser.parse(#"{"a":2,"b":2.0,"c":1e3,"d":1e-400,"e":-7,"f":"3"}"#).objectValue)
        #expect(try params.int("a") == 2)
        #expect(try params.int("e") == -7)
        #expect(try params.int("missing") == nil)
        for key in ["b", "c", "d", "f"] {
            #expect(throws: ProtocolError.self, "\(key)") { try params.int(key) }
        }
        #expect(try params.double("c") == 1000, "a number parameter takes both")
    }

    @Test("request encoding round-trips")
    func requestRoundTrip() throws {
        let request = Request(id: .string("x"), method: "status", params: ["verbose": true])
        let line = request.encodedLine
        #expect(line.last == 0x0A)
        #expect(try decode(String(decoding: line.dropLast(), as: UTF8.self)).get() == request)
    }

    @Test(
        "server messages round-trip",
        arguments: [
            ServerMessage.hello(Hello(protocolVersion: 1, daemonVersion: "0.1.0", pid: 42, maximumLineLength: 1024)),
            .reply(id: .int(1), result: ["pong": true]),
            .error(id: .string("z"), ProtocolError(.unknownMethod, "unknown method 'x'", detail: ["method": "x"])),
            .error(id: nil, ProtocolError(.lineTooLong, "too long")),
            .notice(Notice(name: Notice.shuttingDown, message: "bye", fields: ["deadline_ms": 10_000])),
            .event(
                CallbackEvent(
                    name: "llm_new_token", seq: 12, time: 1_795_000_000_123_456, session: "work", runID: "r2",
                    parentRunID: "r1", tags: ["a", "b"], metadata: ["user": "ann"], data: ["token": "Hel"], request: .int(3))),
            .event(CallbackEvent(name: "chain_start", seq: 1, runID: "r1", data: ["name": "LLMChain"], subscription: 4)),
            .ready(subscription: 4, seq: 1042),
            .other(type: "future_kind", ["seq": 5]),
        ])
    func serverRoundTrip(message: ServerMessage) throws {
        let line = message.encodedLine
        #expect(line.last == 0x0A)
        #expect(try ServerMessage.decode(line: Array(line.dropLast())) == message)
    }

    @Test("event types are numbered in declaration order, and compare and hash by that number")
    func eventTypeOrdinals() {
        #expect(MemoryLayout<EventType>.size == 1)
        #expect(EventType.allCases.map(\.ordinal) == (0..<UInt8(EventType.allCases.count)).map { $0 })
        let all = Set(EventType.allCases)
        #expect(all.count == EventType.allCases.count)
        for type in EventType.allCases {
            #expect(all.contains(type))
            #expect(EventType(rawValue: type.rawValue) == type)
            #expect(Set([type]).contains(EventType.allCases.first { $0 != type }!) == false)
        }
    }

    @Test("a type mask holds exactly the types it was made of; every type has a bit of its own")
    func eventTypeMask() {
        #expect(EventType.allCases.count <= UInt32.bitWidth)
        let all = EventType.allCases
        for (index, type) in all.enumerated() {
            let alone = EventTypeMask([type])
            #expect(all.filter(alone.contains) == [type])
            // Every other type, so each bit is seen set and clear.
            let others = EventTypeMask(all.enumerated().filter { $0.offset % 2 != index % 2 }.map(\.element))
            #expect(!others.contains(type))
        }
        #expect(all.filter(EventTypeMask([]).contains).isEmpty)
        #expect(all.filter(EventTypeMask(all).contains) == all)
    }

    @Test("numbers in an event line are written whole, from 0 to the largest seq")
    func eventNumbers() {
        for (seq, time, text) in [(UInt64.max, Int64(0), #""seq":18446744073709551615,"ts":0,"#), (0, 9, #""seq":0,"ts":9,"#)] {
            var line: [UInt8] = []
            CallbackEvent(name: "custom", seq: seq, time: time).encodeBody(into: &line)
            #expect(String(decoding: line, as: UTF8.self).contains(text))
        }
    }

    @Test("an event line has every member the protocol documents, in a stable order")
    func eventLayout() throws {
        let event = CallbackEvent(
            name: "llm_new_token", seq: 7, time: 1_000_002, session: nil, runID: "r2", parentRunID: "r1", tags: ["t"],
            metadata: ["m": 1], data: ["token": "q\"é\n"], request: .string("x"))
        let line = String(decoding: ServerMessage.event(event).encodedLine, as: UTF8.self)
        #expect(
            line == #"{"type":"event","event":"llm_new_token","seq":7,"ts":1000002,"session":null,"run_id":"r2","#
                + #""parent_run_id":"r1","tags":["t"],"metadata":{"m":1},"data":{"token":"q\"é\n"},"request":"x"}"# + "\n")
        let object = ServerMessage.event(event).object
        #expect(object["seq"] == 7)
        #expect(object["parent_run_id"] == "r1")
        #expect(object["subscription"] == nil)
    }

    @Test("tokens' bodies written together without their events are the events' bodies, byte for byte")
    func tokenBodies() {
        let runs = [
            CallbackEvent(
                type: .llmNewToken, session: "s \"1\"", runID: "r2", parentRunID: "r1", tags: ["a", "b\\"], metadata: ["m": 1],
                data: [:], encodedContext: nil),
            CallbackEvent(
                type: .llmNewToken, session: nil, runID: "r", parentRunID: nil, tags: [], metadata: [:], data: [:],
                encodedContext: nil),
        ]
        // Plain and escaped tokens mixed, escaped ones first and last too; numbers that
        // gain a digit within the group.
        let tokens = ["q\"é\n\u{1}\\", "", " w7", "é", "\t", "x", "a\"b"]
        let numbering: [(UInt64, Int64)] = [(1, 0), (7, 1_700_000_000_123_456), (97, -5), (.max - 6, 9)]
        for run in runs {
            for (first, time) in numbering {
                for count in [1, tokens.count] {
                    let group = Array(tokens.suffix(count))
                    let bodies = CallbackEvent.encodeTokenBodies(group, firstSeq: first, time: time, context: run.encodeContext())
                    #expect(bodies.count == group.count)
                    #expect(bodies.ends.last == bodies.bytes.count)
                    for (index, token) in group.enumerated() {
                        var event = run
                        (event.seq, event.time, event.data) = (first + UInt64(index), time, ["token": .string(token)])
                        var expected: [UInt8] = []
                        event.encodeBody(into: &expected)
                        #expect(String(decoding: bodies[index], as: UTF8.self) == String(decoding: expected, as: UTF8.self))
                    }
                }
            }
        }
    }

    @Test("integer request ids, negative ones too, and names of types this version does not know are written as JSON")
    func eventAddressing() {
        for (request, text) in [(RequestID.int(42), #","request":42}"#), (.int(-7), #","request":-7}"#), (.int(0), #","request":0}"#)] {
            let line = String(decoding: ServerMessage.event(CallbackEvent(name: "text", request: request)).encodedLine, as: UTF8.self)
            #expect(line.hasSuffix(text + "\n"), "\(line)")
        }
        let unknown = CallbackEvent(name: #"from "later""#, data: ["n": 1, "s": "v"])
        let line = String(decoding: ServerMessage.event(unknown).encodedLine, as: UTF8.self)
        #expect(line.hasPrefix(#"{"type":"event","event":"from \"later\"","#))
        #expect(line.contains(#""data":{"n":1,"s":"v"}"#))
    }

    @Test("copies of an event are independent values, whatever they share underneath")
    func eventCopies() {
        let original = CallbackEvent(name: "llm_new_token", seq: 1, runID: "r", tags: ["a"], data: ["token": "x"])
        var copy = original
        copy.seq = 2
        copy.tags.append("b")
        copy.data["token"] = "y"
        copy.name = "custom"
        #expect(original.seq == 1 && original.tags == ["a"] && original.data == ["token": "x"])
        #expect(original.name == "llm_new_token" && original.type == .llmNewToken)
        #expect(copy.seq == 2 && copy.tags == ["a", "b"] && copy.data == ["token": "y"])
        #expect(copy.type == .custom)
        copy.name = "not_a_type"
        #expect(copy.type == nil)
        #expect(original != copy)
    }

    @Test("a reply line has type and id first, for people reading the stream")
    func replyLayout() {
        let line = String(decoding: ServerMessage.reply(id: .int(9), result: ["a": 1]).encodedLine, as: UTF8.self)
        #expect(line == "{\"type\":\"reply\",\"id\":9,\"result\":{\"a\":1}}\n")
    }

    @Test("clients tolerate unknown members in known messages")
    func unknownMembers() throws {
        let line = #"{"type":"reply","id":1,"result":{},"future":{"x":1}}"#
        #expect(try ServerMessage.decode(line: Array(line.utf8)) == .reply(id: .int(1), result: [:]))
    }

    @Test("parameter accessors name the parameter and the types on mismatch")
    func paramAccessors() throws {
        let params: JSONObject = ["protocol": "one", "client": 5, "n": 2]
        #expect(try params.int("n") == 2)
        #expect(try params.int("missing") == nil)
        #expect {
            try params.int("protocol")
        } throws: { error in
            let error = error as! ProtocolError
            return error.code == .invalidParams && error.detail["field"] == "protocol" && error.detail["got"] == "string"
        }
        #expect(throws: ProtocolError.self) { try params.string("client") }
    }

    @Test("error codes have a family")
    func families() {
        #expect(ErrorCode.lineTooLong.family == "protocol")
        #expect(ErrorCode(rawValue: "upstream.rate_limited").family == "upstream")
    }

    @Test("timestamps are RFC 3339 UTC with milliseconds")
    func timestamps() {
        #expect(Timestamp.rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.rfc3339(milliseconds: 1_795_269_723_456) == "2026-11-21T14:02:03.456Z")
    }

    @Test("a client finds the socket: flag, environment, then its own daemon or the system's")
    func socketLocation() {
        let environment: [String: String] = ["XDG_RUNTIME_DIR": "/run/user/1000", "LLMD_SOCKET": "/tmp/env.sock"]
        let noVariable: [String: String] = ["XDG_RUNTIME_DIR": "/run/user/1000"]
        func resolve(_ explicit: String?, uid: UInt32 = 1000, env: [String: String], existing: Set<String> = []) -> String {
            SocketLocation.resolve(explicit: explicit, uid: uid, environment: { env[$0] }, socketExists: existing.contains)
        }
        #expect(resolve("/x.sock", env: environment) == "/x.sock")
        #expect(resolve(nil, env: environment) == "/tmp/env.sock")
        #expect(resolve(nil, uid: 0, env: noVariable) == "/run/llmd/llmd.sock")
        #expect(resolve(nil, env: noVariable) == "/run/user/1000/llmd/llmd.sock")
        #expect(resolve(nil, env: noVariable, existing: ["/run/llmd/llmd.sock"]) == "/run/llmd/llmd.sock")
        #expect(
            resolve(nil, env: noVariable, existing: ["/run/llmd/llmd.sock", "/run/user/1000/llmd/llmd.sock"])
                == "/run/user/1000/llmd/llmd.sock")
        #expect(SocketLocation.userPath(uid: 1001, environment: { _ in nil }) == "/run/user/1001/llmd/llmd.sock")
    }

    @Test("with no daemon on the socket tried, the others that exist are offered; to root, users' own daemons too")
    func socketAlternatives() {
        let existing: Set<String> = ["/run/llmd/llmd.sock", "/tmp/xdg/llmd/llmd.sock", "/run/user/1000/llmd/llmd.sock"]
        func alternatives(to tried: String, uid: UInt32, env: [String: String]) -> [String] {
            SocketLocation.alternatives(
                to: tried, uid: uid, environment: { env[$0] }, socketExists: existing.contains,
                userRuntimeDirectories: { ["/run/user/1000", "/run/user/1001"] })
        }
        #expect(
            alternatives(to: "/run/llmd/llmd.sock", uid: 0, env: ["XDG_RUNTIME_DIR": "/tmp/xdg"])
                == ["/tmp/xdg/llmd/llmd.sock", "/run/user/1000/llmd/llmd.sock"])
        #expect(alternatives(to: "/run/user/1000/llmd/llmd.sock", uid: 1000, env: [:]) == ["/run/llmd/llmd.sock"])
        #expect(alternatives(to: "/tmp/other.sock", uid: 1001, env: [:]) == ["/run/llmd/llmd.sock"], "no one else's to others")
    }
}
