extension Duration {
    /// The duration in whole milliseconds, as the protocol's `_ms` fields carry it.
    public var wholeMilliseconds: Int64 {
        components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// The duration in whole microseconds, as systemd's `_USEC` settings take it.
    public var wholeMicroseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }
}
