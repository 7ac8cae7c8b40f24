import CCurl

/// What the linked libcurl can do.
///
/// llmd does not call curl_global_init at startup: since libcurl 7.84 it is thread-safe,
/// so the HTTP engine initialises libcurl on first use and an idle daemon never pays
/// for TLS library initialisation.
public enum CurlLibrary {
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
