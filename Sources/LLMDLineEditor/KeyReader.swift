import Glibc
import Synchronization

/// Whether the last key byte libedit read was ESC, after which the next may never come.
private let afterEscape = Atomic<Bool>(false)

/// Ctrl-L was read: libedit clears the screen, and the editor must forget what was above.
private let clearScreenRead = Atomic<Bool>(false)

/// The function libedit reads keys with (`rl_getc_function`), in place of its own.
enum KeyReader {
    /// How long libedit waits for the byte after ESC (GNU readline's keyseq-timeout) and
    /// for the rest of a UTF-8 character, in milliseconds.
    static let keySequenceTimeout: Int32 = 500

    /// Reads one byte of a key, or one whole UTF-8 character, for libedit.
    ///
    /// libedit reads an escape sequence whole, so a lone ESC (Meta's prefix, or a stray key)
    /// would block the caller's loop until the next key: after ESC this gives up after
    /// `keySequenceTimeout`, and libedit drops the unfinished sequence. It decodes UTF-8
    /// because libedit takes what a reader of its caller's returns as one wide character.
    ///
    /// - Returns: a byte or a code point; -1 (EOF) when ESC was not followed in time or the
    ///   input ended.
    static func readKey(_ stream: UnsafeMutablePointer<FILE>?) -> Int32 {
        guard let stream else { return -1 }
        let descriptor = fileno(stream)
        let timeout = afterEscape.load(ordering: .relaxed) ? keySequenceTimeout : -1
        guard let first = readByte(descriptor, timeout: timeout) else {
            afterEscape.store(false, ordering: .relaxed)
            return -1
        }
        afterEscape.store(first == 0x1B, ordering: .relaxed)
        if first == 0x0C { clearScreenRead.store(true, ordering: .relaxed) }
        let length =
            switch first {
            case 0xC0..<0xE0: 2
            case 0xE0..<0xF0: 3
            case 0xF0..<0xF8: 4
            default: 1
            }
        guard length > 1 else { return Int32(first) }
        var bytes = [first]
        while bytes.count < length, let next = readByte(descriptor, timeout: keySequenceTimeout) {
            bytes.append(next)
        }
        let scalar = String(validating: bytes, as: UTF8.self)?.unicodeScalars.first ?? "\u{FFFD}"
        return Int32(bitPattern: scalar.value)
    }

    /// Whether Ctrl-L was read since the last call.
    static func takeClearScreen() -> Bool {
        clearScreenRead.exchange(false, ordering: .relaxed)
    }

    private static func readByte(_ descriptor: Int32, timeout: Int32) -> UInt8? {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        var byte: UInt8 = 0
        while true {
            let ready = poll(&entry, 1, timeout)
            if ready < 0, errno == EINTR { continue }
            guard ready == 1 else { return nil }
            let count = read(descriptor, &byte, 1)
            if count < 0, errno == EINTR { continue }
            return count == 1 ? byte : nil
        }
    }
}
