import LLMDEvents
import Testing

@Suite("Run ids")
struct RunIDTests {
    @Test("a run id is a random version 4 UUID in lower-case hex, and ids do not repeat")
    func format() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = RunID.make()
            let bytes = Array(id.utf8)
            #expect(bytes.count == 36)
            for (index, byte) in bytes.enumerated() {
                if [8, 13, 18, 23].contains(index) {
                    #expect(byte == UInt8(ascii: "-"), "\(id)")
                } else {
                    #expect(Array("0123456789abcdef".utf8).contains(byte), "\(id)")
                }
            }
            #expect(bytes[14] == UInt8(ascii: "4"), "version 4: \(id)")
            #expect(Array("89ab".utf8).contains(bytes[19]), "RFC 4122 variant: \(id)")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }
}
