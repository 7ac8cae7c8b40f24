// Tokenizer throughput: encodes one file with `encodeOrdinary` on one thread and prints a JSON
// line, for scripts/bench_tokenizer.py to compare with Python's tiktoken.
//
// Usage: TokenizerBenchmark --vocab-dir DIR --encoding NAME --file TEXTFILE [--repeat N]
//
// Only encoding is timed, not loading the vocabulary; `seconds` is the fastest of N runs.

import Glibc
import LLMDTokenizer

func fail(_ message: String) -> Never {
    var line = "TokenizerBenchmark: \(message)\n"
    line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(2)
}

func readFile(_ path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else { fail("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { fclose(file) }
    var contents: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if count == 0 { break }
        contents.append(contentsOf: chunk[0..<count])
    }
    return contents
}

var options: [String: String] = [:]
var arguments = CommandLine.arguments.dropFirst()
while let name = arguments.popFirst() {
    guard ["--vocab-dir", "--encoding", "--file", "--repeat"].contains(name), let value = arguments.popFirst() else {
        fail("usage: TokenizerBenchmark --vocab-dir DIR --encoding NAME --file TEXTFILE [--repeat N]")
    }
    options[name] = value
}
guard let vocabularyDirectory = options["--vocab-dir"], let textPath = options["--file"] else {
    fail("--vocab-dir and --file are required")
}
guard let encoding = Encoding(rawValue: options["--encoding"] ?? "cl100k_base") else {
    fail("unknown encoding \(options["--encoding"] ?? ""); known: cl100k_base, o200k_base")
}
guard let repeats = Int(options["--repeat"] ?? "5"), repeats > 0 else { fail("--repeat wants a positive number") }

let tokenizer: Tokenizer
do {
    tokenizer = try Tokenizer(encoding: encoding, vocabularyFile: vocabularyDirectory + "/" + encoding.fileName)
} catch {
    fail(error.description)
}
let bytes = readFile(textPath)
let text = String(decoding: bytes, as: UTF8.self)

let clock = ContinuousClock()
var fastest = Duration.seconds(Int64.max)
var tokenCount = 0
for _ in 0..<repeats {
    let start = clock.now
    let tokens = tokenizer.encodeOrdinary(text)
    let elapsed = clock.now - start
    tokenCount = tokens.count
    fastest = min(fastest, elapsed)
}
let seconds = Double(fastest.components.seconds) + Double(fastest.components.attoseconds) / 1e18
let megabytesPerSecond = Double(text.utf8.count) / seconds / 1e6
print(
    #"{"encoding":"\#(encoding.rawValue)","bytes":\#(text.utf8.count),"tokens":\#(tokenCount),"#
        + #""seconds":\#(seconds),"mb_per_s":\#(megabytesPerSecond)}"#)
