import LLMDOpenAI
import LLMDProtocol

/// libFuzzer's driver, for programs that have a main of their own.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// The executable's main: SwiftPM links `main` to `<module>_main`.
@_cdecl("UpstreamFuzzer_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzOne)
}

/// One input (`make fuzz`): arbitrary bytes through the parsers that read what upstream
/// servers send. Besides not crashing, it checks that the SSE parser yields the same events
/// however the input is split, and that the chunk fast path agrees with the full decoder.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []

    var whole = ServerSentEventParser(maximumEventSize: 1 << 16)
    var wholeEvents: [ServerSentEvent] = []
    let wholeFailed = (try? whole.parse(bytes, into: &wholeEvents)) == nil

    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    var split = ServerSentEventParser(maximumEventSize: 1 << 16)
    var splitEvents: [ServerSentEvent] = []
    let splitFailed =
        (try? split.parse(Array(bytes[..<cut]), into: &splitEvents)) == nil
        || (try? split.parse(Array(bytes[cut...]), into: &splitEvents)) == nil
    if !wholeFailed, !splitFailed, wholeEvents != splitEvents {
        fatalError("SSE events depend on where the input was split at \(cut)")
    }

    for event in wholeEvents where !event.isDone {
        _ = try? OpenAIWire.decodeChunk(event.data)
    }
    _ = try? OpenAIWire.decodeChunk(bytes)
    // decodeChunk takes the fast path whenever it applies; it must match a full decode.
    if let fast = try? OpenAIWire.decodeChunk(bytes), let object = (try? JSONParser.parse(bytes))?.objectValue {
        let choice = object["choices"]?.arrayValue?.first?.objectValue
        let text = choice?["delta"]?.objectValue?["content"]?.stringValue ?? choice?["text"]?.stringValue ?? ""
        if fast.text != text { fatalError("delta fast path disagrees with the full decoder") }
    }
    if let value = try? JSONParser.parse(bytes), (try? JSONParser.parse(value.encoded)) != value {
        fatalError("JSON encode/parse round trip changed the value")
    }
    return 0
}
