import Testing

@testable import LLMDOpenAI

@Suite("Retry policy")
struct RetryPolicyTests {
    let policy = RetryPolicy(
        maximumRetries: 3, baseBackoff: .milliseconds(500), maximumBackoff: .seconds(4), maximumRetryAfter: .seconds(30))

    @Test(
        "what is retried",
        arguments: [
            (UpstreamFailure.transport, true), (.http(status: 408, errorCode: nil), true),
            (.http(status: 409, errorCode: nil), true), (.http(status: 429, errorCode: "rate_limit_exceeded"), true),
            (.http(status: 500, errorCode: nil), true), (.http(status: 503, errorCode: nil), true),
            (.http(status: 429, errorCode: "insufficient_quota"), false), (.http(status: 400, errorCode: nil), false),
            (.http(status: 401, errorCode: nil), false), (.http(status: 403, errorCode: nil), false),
            (.http(status: 404, errorCode: nil), false),
        ])
    func retryable(failure: UpstreamFailure, expected: Bool) {
        #expect(failure.isRetryable == expected)
        let decision = policy.decide(after: failure, attempt: 1, retryAfter: nil, random: 0.5)
        #expect((decision != .giveUp) == expected)
    }

    @Test("backoff doubles per attempt up to the cap, scaled by the jitter")
    func backoff() {
        let failure = UpstreamFailure.http(status: 503, errorCode: nil)
        #expect(policy.decide(after: failure, attempt: 1, retryAfter: nil, random: 1) == .retry(after: .milliseconds(500)))
        #expect(policy.decide(after: failure, attempt: 2, retryAfter: nil, random: 1) == .retry(after: .seconds(1)))
        #expect(policy.decide(after: failure, attempt: 3, retryAfter: nil, random: 0.5) == .retry(after: .seconds(1)))
        #expect(policy.decide(after: failure, attempt: 4, retryAfter: nil, random: 1) == .giveUp)
        let patient = RetryPolicy(maximumRetries: 10, baseBackoff: .milliseconds(500), maximumBackoff: .seconds(4))
        #expect(patient.decide(after: failure, attempt: 9, retryAfter: nil, random: 1) == .retry(after: .seconds(4)))
        #expect(patient.decide(after: failure, attempt: 2, retryAfter: nil, random: 0) == .retry(after: .zero))
    }

    @Test("Retry-After wins over backoff, within a bound")
    func retryAfterHonoured() {
        let failure = UpstreamFailure.http(status: 429, errorCode: nil)
        #expect(policy.decide(after: failure, attempt: 1, retryAfter: .seconds(7), random: 0.1) == .retry(after: .seconds(7)))
        #expect(policy.decide(after: failure, attempt: 1, retryAfter: .seconds(31), random: 0.1) == .giveUp)
    }

    @Test("Retry-After as seconds or an HTTP date; junk is ignored")
    func retryAfterParsing() {
        let now: Int64 = 784_111_767  // Sun, 06 Nov 1994 08:49:27 GMT
        #expect(RetryAfter.delay("120", now: now) == .seconds(120))
        #expect(RetryAfter.delay(" 0 ", now: now) == .seconds(0))
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:17 GMT", now: now) == .seconds(0))
        #expect(RetryAfter.delay("-5", now: now) == nil)
        #expect(RetryAfter.delay("soon", now: now) == nil)
        #expect(RetryAfter.delay("Sunday, 06-Nov-94 08:49:37 GMT", now: now) == nil)
    }

    @Test("calendar arithmetic for HTTP dates")
    func civilDays() {
        #expect(HTTPDate.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
        #expect(HTTPDate.daysFromCivil(year: 2000, month: 3, day: 1) == 11_017)
        #expect(HTTPDate.parse("Sat, 21 Nov 2026 14:02:03 GMT") == 1_795_269_723)
    }
}
