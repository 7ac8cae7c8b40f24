#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Finds and reads `llmd.conf` and its drop-ins.
public enum ConfigurationFiles {
    /// Why configuration could not be read at all.
    public struct ReadError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The main file (when present) then `<path>.d/*.conf` sorted by name.
    ///
    /// - Parameter mainFileRequired: an explicitly named file must exist; the default may not.
    /// - Throws: ``ReadError`` for a file that exists but cannot be read, or a missing
    ///   required main file.
    public static func read(mainPath: String, mainFileRequired: Bool) throws(ReadError) -> [(path: String, text: String)] {
        var files: [(path: String, text: String)] = []
        switch readFile(mainPath) {
        case .success(let text): files.append((mainPath, text))
        case .failure(let errorNumber) where errorNumber.value == ENOENT && !mainFileRequired: break
        case .failure(let errorNumber): throw ReadError(path: mainPath, reason: String(cString: strerror(errorNumber.value)))
        }
        let dropInDirectory = mainPath + ".d"
        for name in listDirectory(dropInDirectory).filter({ $0.hasSuffix(".conf") }).sorted() {
            let path = dropInDirectory + "/" + name
            switch readFile(path) {
            case .success(let text): files.append((path, text))
            case .failure(let errorNumber): throw ReadError(path: path, reason: String(cString: strerror(errorNumber.value)))
            }
        }
        return files
    }

    /// Reads and parses all files. Read failures become an error diagnostic.
    ///
    /// - Returns: the configuration, its diagnostics, and the files read in order.
    public static func load(
        mainPath: String, mainFileRequired: Bool
    ) -> (DaemonConfiguration, [ConfigDiagnostic], files: [String]) {
        do {
            let files = try read(mainPath: mainPath, mainFileRequired: mainFileRequired)
            let (configuration, diagnostics) = DaemonConfiguration.parse(files: files)
            return (configuration, diagnostics, files.map(\.path))
        } catch {
            let diagnostic = ConfigDiagnostic(.error, at: SourceLocation(file: error.path, line: 0), error.reason)
            return (DaemonConfiguration(), [diagnostic], [])
        }
    }

    /// An errno value, boxed so it can be a `Result` failure.
    private struct Errno: Error {
        var value: Int32
    }

    private static func readFile(_ path: String) -> Result<String, Errno> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(Errno(value: errno)) }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(value: errno))
            }
            if count == 0 { break }
            contents.append(contentsOf: chunk[0..<count])
        }
        return .success(String(decoding: contents, as: UTF8.self))
    }

    private static func listDirectory(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names
    }
}
