#if canImport(Glibc)
import Glibc
#endif

/// Writes all of `text` to the file descriptor, past short writes and interrupted calls.
///
/// - Returns: the errno of a failed write (EIO when the descriptor took nothing), nil when
///   all was written.
@discardableResult
public func writeAll(_ text: String, to descriptor: Int32) -> Int32? {
    var text = text
    return text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0, errno == EINTR { continue }
            if written <= 0 { return written < 0 ? errno : EIO }
            offset += written
        }
        return nil
    }
}
