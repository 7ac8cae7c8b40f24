import LLMDProtocol

/// When and how long to wait before trying an upstream call again.
///
/// Connection errors, 408, 409, 429 and 5xx are retried with exponential backoff and full
/// jitter, or after the server's `Retry-After` when it gives one; a 429 for an exhausted
/// quota, 400, 401, 403 and 404 are not, since the same request would fail the same way.
/// Nothing is retried once tokens have reached subscribers: the caller checks that.
public struct RetryPolicy: Sendable, Equatable {
    /// Retries after the first attempt; 0 disables retrying.
    public var maximumRetries: Int
    /// The first backoff; each further one doubles, up to `maximumBackoff`.
    public var baseBackoff: Duration
    public var maximumBackoff: Duration
    /// The longest `Retry-After` honoured; a longer one fails the call instead of stalling it.
    public var maximumRetryAfter: Duration

    public init(
        maximumRetries: Int = 2, baseBackoff: Duration = .milliseconds(500), maximumBackoff: Duration = .seconds(8),
        maximumRetryAfter: Duration = .seconds(60)
    ) {
        self.maximumRetries = maximumRetries
        self.baseBackoff = baseBackoff
        self.maximumBackoff = maximumBackoff
        self.maximumRetryAfter = maximumRetryAfter
    }

    /// What to do after a failed attempt.
    public enum Decision: Sendable, Equatable {
        case retry(after: Duration)
        case giveUp
    }

    /// - Parameters:
    ///   - failure: how the attempt failed.
    ///   - attempt: 1 for the first retry, 2 for the second…
    ///   - retryAfter: the response's `Retry-After`, already converted to a delay.
    ///   - random: a number in 0..<1 for the jitter, injected so tests are exact.
    public func decide(
        after failure: UpstreamFailure, attempt: Int, retryAfter: Duration?, random: Double
    ) -> Decision {
        guard failure.isRetryable, attempt <= maximumRetries else { return .giveUp }
        if let retryAfter {
            return retryAfter <= maximumRetryAfter ? .retry(after: retryAfter) : .giveUp
        }
        // Full jitter (uniform between zero and the exponential cap) spreads retries of
        // many concurrent calls instead of having them hit the server in waves.
        let exponent = min(attempt - 1, 30)
        let cap = min(baseBackoff * (1 << exponent), maximumBackoff)
        return .retry(after: cap * random)
    }
}

/// How an upstream attempt failed, as far as retrying is concerned.
public enum UpstreamFailure: Sendable, Equatable {
    /// No HTTP response: connection refused or reset, DNS, TLS, a timeout.
    case transport
    /// The server answered with this status; `errorCode` is the body's error code, if any
    /// (OpenAI's `insufficient_quota`).
    case http(status: Int, errorCode: String?)

    public var isRetryable: Bool {
        switch self {
        case .transport:
            return true
        case .http(429, "insufficient_quota"):
            return false
        case .http(let status, _):
            return status == 408 || status == 409 || status == 429 || (500...599).contains(status)
        }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
public enum RetryAfter {
    /// The delay a `Retry-After` value asks for, measured from `now` (seconds since the
    /// epoch); nil when the value is neither form. A date in the past means no delay.
    public static func delay(_ value: String, now: Int64) -> Duration? {
        let trimmed = value.trimmingBlanks
        if let seconds = Int64(trimmed), seconds >= 0 {
            return .seconds(seconds)
        }
        guard let date = HTTPDate.parse(trimmed) else { return nil }
        return .seconds(max(0, date - now))
    }
}

/// The IMF-fixdate form of HTTP dates (`Sun, 06 Nov 1994 08:49:37 GMT`), the only one
/// servers may send; obsolete forms are not accepted.
enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Seconds since the epoch.
    static func parse(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = Int64(parts[1]), let monthIndex = months.firstIndex(of: String(parts[2])),
            let year = Int64(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int64($0) }
        guard time.count == 3, (1...31).contains(day), (0...23).contains(time[0]), (0...59).contains(time[1]),
            (0...60).contains(time[2])
        else { return nil }
        return daysFromCivil(year: year, month: Int64(monthIndex + 1), day: day) * 86_400
            + time[0] * 3_600 + time[1] * 60 + time[2]
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
