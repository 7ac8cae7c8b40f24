import Testing

@testable import LLMDProtocol

@Suite("Event methods")
struct EventMethodsTests {
    @Test("publish's parameters and result go to JSON and back; an absent or null member is left out")
    func publish() throws {
        let params = PublishMethod.Params(
            name: "deploy", data: ["version": "1.2"], session: "s", runID: "r", parentRunID: "p", tags: ["ops"], metadata: ["k": 1])
        #expect(try PublishMethod.Params(json: params.json) == params)
        #expect(params.json["run_id"] == "r" && params.json["parent_run_id"] == "p")
        #expect(try PublishMethod.Params(json: ["name": "n", "data": nil]) == PublishMethod.Params(name: "n"))
        #expect(PublishMethod.Params(name: "n").json == ["name": "n"])
        let result = PublishMethod.Result(seq: 7, runID: "r")
        #expect(result.json == ["seq": 7, "run_id": "r"])
        #expect(try PublishMethod.Result(json: result.json) == result)
    }

    @Test("subscribe's parameters and result go to JSON and back; oldest_seq is null when there is none")
    func subscribe() throws {
        let params = SubscribeMethod.Params(
            sessions: ["a"], types: ["llm_end"], tags: ["t"], runID: "r", since: 3, blocking: ["llm_end"], onLag: .skip)
        #expect(try SubscribeMethod.Params(json: params.json) == params)
        #expect(params.json["run_id"] == "r" && params.json["on_lag"] == "skip")
        #expect(SubscribeMethod.Params().json == [:])
        #expect(try SubscribeMethod.Params(json: ["since_time": 5]) == SubscribeMethod.Params(sinceTime: 5))
        let empty = SubscribeMethod.Result(subscription: 1, cursor: 0, oldestSeq: nil)
        #expect(empty.json == ["subscription": 1, "cursor": 0, "oldest_seq": nil])
        #expect(try SubscribeMethod.Result(json: empty.json) == empty)
        let some = SubscribeMethod.Result(subscription: 2, cursor: 9, oldestSeq: 4)
        #expect(try SubscribeMethod.Result(json: some.json) == some)
    }

    @Test("subscribe's invalid parameters are named as the daemon always named them")
    func subscribeErrors() {
        #expect(throws: ProtocolError.invalidParam("sessions", expected: "an array of strings", got: 3)) {
            try SubscribeMethod.Params(json: ["sessions": 3])
        }
        #expect(throws: ProtocolError.invalidParam("since", expected: "a seq, 0 or more", got: -1)) {
            try SubscribeMethod.Params(json: ["since": -1])
        }
        #expect(throws: ProtocolError(.invalidParams, "pass 'since' or 'since_time', not both", detail: ["field": "since_time"])) {
            try SubscribeMethod.Params(json: ["since": -1, "since_time": 5])
        }
        #expect(throws: ProtocolError.invalidParam("on_lag", expected: "resume or skip", got: "drop")) {
            try SubscribeMethod.Params(json: ["on_lag": "drop"])
        }
    }

    @Test("unsubscribe, ack and cancel go to JSON and back; a missing or wrong member is named")
    func others() throws {
        #expect(try UnsubscribeMethod.Params(json: ["subscription": 2]) == UnsubscribeMethod.Params(subscription: 2))
        #expect(UnsubscribeMethod.Result().json == ["unsubscribed": true])
        let ack = AckMethod.Params(subscription: 1, seq: 5)
        #expect(ack.json == ["subscription": 1, "seq": 5])
        #expect(try AckMethod.Params(json: ack.json) == ack)
        #expect(try AckMethod.Result(json: AckMethod.Result(acknowledged: true).json) == AckMethod.Result(acknowledged: true))
        let cancel = CancelMethod.Params(request: .string("long"))
        #expect(cancel.json == ["request": "long"])
        #expect(try CancelMethod.Params(json: ["request": 3]) == CancelMethod.Params(request: .int(3)))
        #expect(try CancelMethod.Result(json: ["cancelled": false]) == CancelMethod.Result(cancelled: false))

        #expect(throws: ProtocolError.invalidParam("subscription", expected: "the number subscribe returned", got: nil)) {
            try UnsubscribeMethod.Params(json: [:])
        }
        #expect(throws: ProtocolError.invalidParam("seq", expected: "the seq of the event acknowledged", got: 0)) {
            try AckMethod.Params(json: ["subscription": 1, "seq": 0])
        }
        #expect(throws: ProtocolError.invalidParam("request", expected: "a string or an integer", got: JSONValue.null)) {
            try CancelMethod.Params(json: ["request": nil])
        }
        #expect(throws: ProtocolError.invalidParam("name", expected: "the custom event's name", got: "")) {
            try PublishMethod.Params(json: ["name": ""])
        }
    }
}
