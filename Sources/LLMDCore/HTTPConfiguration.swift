/// `[HTTP]` of llmd.conf(5): the OpenAI-compatible HTTP API.
public struct HTTPConfiguration: Sendable, Equatable {
    /// `Enabled=`: serve it (the default).
    public var enabled = true
    /// `API=`: serve the OpenAI-compatible API; with `API=no` the listeners serve
    /// `/metrics` alone.
    public var servesAPI = true
    /// `Metrics=`: serve Prometheus metrics at `GET /metrics`.
    public var servesMetrics = true
    /// `Socket=`: its Unix socket; nil for `http.sock` beside the protocol socket.
    public var socketPath: String?
    /// `MaxBodyBytes=`: a larger request is answered 413 and not read.
    public var maximumBodyBytes = 8 << 20
    /// `Listen=`: a TCP address to serve as well, where every request needs a key.
    public var listen: TCPAddress?
    /// `AllowRemote=`: whether `Listen=` may be an address other hosts reach.
    public var allowsRemote = false
    /// `IdleTimeoutSec=`: a connection that sends nothing for this long while no call of
    /// its runs is closed, so a client sending its headers a byte at a time holds nothing.
    public var idleTimeout: Duration = .seconds(30)

    /// A host (an IP address) and a port.
    public struct TCPAddress: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public var isLoopback: Bool { host == "::1" || host.hasPrefix("127.") }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// `127.0.0.1:8080` or `[::1]:8080`.
        static func parse(_ text: String) throws(ConfigValueError) -> TCPAddress {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
            else { throw ConfigValueError("Listen= needs an address and a port, such as 127.0.0.1:8080 or [::1]:8080") }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let isIPv4 = host.split(separator: ".", omittingEmptySubsequences: false).count == 4
                && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
            guard isIPv4 || (host.contains(":") && host.allSatisfy { $0.isHexDigit || $0 == ":" }) else {
                throw ConfigValueError("Listen= takes an IP address, not a host name: '\(host)'")
            }
            return TCPAddress(host: host, port: port)
        }
    }

    public init() {}

    /// Whether the listeners have anything to serve.
    public var servesAnything: Bool { enabled && (servesAPI || servesMetrics) }

    static let keys: [ConfigurationKey<HTTPConfiguration>] = [
        .init(name: "Enabled") { config, value throws(ConfigValueError) in
            config.enabled = value.isEmpty ? true : try parseBoolean(value)
        },
        .init(name: "API") { config, value throws(ConfigValueError) in
            config.servesAPI = value.isEmpty ? true : try parseBoolean(value)
        },
        .init(name: "Metrics") { config, value throws(ConfigValueError) in
            config.servesMetrics = value.isEmpty ? true : try parseBoolean(value)
        },
        .init(name: "Socket") { config, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("Socket= must be an absolute path") }
            config.socketPath = value.isEmpty ? nil : value
        },
        .init(name: "Listen") { config, value throws(ConfigValueError) in
            config.listen = value.isEmpty ? nil : try TCPAddress.parse(value)
        },
        .init(name: "AllowRemote") { config, value throws(ConfigValueError) in
            config.allowsRemote = value.isEmpty ? false : try parseBoolean(value)
        },
        .init(name: "IdleTimeoutSec") { config, value throws(ConfigValueError) in
            let timeout = value.isEmpty ? .seconds(30) : try parseTimeSpan(value)
            guard timeout > .zero else { throw ConfigValueError("IdleTimeoutSec= must be more than 0") }
            config.idleTimeout = timeout
        },
        .init(name: "MaxBodyBytes") { config, value throws(ConfigValueError) in
            let size = value.isEmpty ? 8 << 20 : try parseByteSize(value)
            guard size >= 1 << 10 else { throw ConfigValueError("MaxBodyBytes= must be at least 1K") }
            config.maximumBodyBytes = size
        },
    ]
}
