/// `[HTTP]` of llmd.conf(5): the OpenAI-compatible HTTP API.
public struct HTTPConfiguration: Sendable, Equatable {
    /// `Enabled=`: serve it (the default).
    public var enabled = true
    /// `Socket=`: its Unix socket; nil for `http.sock` beside the protocol socket.
    public var socketPath: String?
    /// `MaxBodyBytes=`: a larger request is answered 413 and not read.
    public var maximumBodyBytes = 8 << 20

    public init() {}

    static let keys: [ConfigurationKey<HTTPConfiguration>] = [
        .init(name: "Enabled") { config, value throws(ConfigValueError) in
            config.enabled = value.isEmpty ? true : try parseBoolean(value)
        },
        .init(name: "Socket") { config, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("Socket= must be an absolute path") }
            config.socketPath = value.isEmpty ? nil : value
        },
        .init(name: "MaxBodyBytes") { config, value throws(ConfigValueError) in
            let size = value.isEmpty ? 8 << 20 : try parseByteSize(value)
            guard size >= 1 << 10 else { throw ConfigValueError("MaxBodyBytes= must be at least 1K") }
            config.maximumBodyBytes = size
        },
    ]
}
