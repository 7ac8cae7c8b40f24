import CCurl

/// Process-wide libcurl setup and what the linked libcurl can do.
public enum CurlLibrary {
    /// Initialises libcurl. Must run once, before any other thread starts, because
    /// curl_global_init(3) is not thread-safe.
    public static func initialize() {
        let status = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        precondition(status == CURLE_OK, "curl_global_init failed: \(status.rawValue)")
    }

    /// Version and capabilities, as `llmd --version` prints them.
    public struct Info: Sendable {
        public var version: String
        public var tlsBackend: String
        public var supportsHTTP2: Bool
        public var supportsUnixSockets: Bool
    }

    public static var info: Info {
        let data = llmd_curl_version_info().pointee
        let features = data.features
        return Info(
            version: String(cString: data.version),
            tlsBackend: data.ssl_version.map { String(cString: $0) } ?? "none",
            supportsHTTP2: features & CURL_VERSION_HTTP2 != 0,
            supportsUnixSockets: features & CURL_VERSION_UNIX_SOCKETS != 0
        )
    }
}
