/// How every event body begins: `{"type":"event","event":NAME,"seq":SEQ,"ts":TIME`.
///
/// ``CallbackEvent`` writes it at the start of each body, and the journal leaves it out of
/// what it stores and writes it again when it reads: both go through here, so a change to
/// how bodies begin cannot silently break what the journal gives back.
package enum EventBodyHead {
    /// What comes before the `seq`: `{"type":"event","event":NAME,"seq":`.
    package static func appendOpening(name: String, to bytes: inout [UInt8]) {
        bytes.append(literal: #"{"type":"event","event":"#)
        JSONValue.encodeString(name, into: &bytes)
        bytes.append(literal: #","seq":"#)
    }

    /// What follows the `seq`: `,"ts":TIME`, a time before the epoch written as 0.
    package static func appendClosing(time: Int64, to bytes: inout [UInt8]) {
        bytes.append(literal: #","ts":"#)
        appendDecimal(UInt64(max(0, time)), to: &bytes)
    }

    /// The whole head.
    package static func append(name: String, seq: UInt64, time: Int64, to bytes: inout [UInt8]) {
        appendOpening(name: name, to: &bytes)
        appendDecimal(seq, to: &bytes)
        appendClosing(time: time, to: &bytes)
    }
}
