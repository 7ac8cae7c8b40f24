/// Run identifiers: random UUIDs (version 4), as LangChain gives its runs.
public enum RunID {
    /// A new random run id, such as `1b4e28ba-2fa1-41d2-883f-0016d3cca427`.
    public static func make() -> String {
        // Eight bytes per draw: each draw is a getrandom(2) call, so not one per byte.
        var generator = SystemRandomNumberGenerator()
        var bytes = [generator.next(), generator.next()].flatMap { word in
            (0..<8).map { UInt8(truncatingIfNeeded: word >> ($0 * 8)) }
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(index) { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
