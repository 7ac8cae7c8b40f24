import LLMDCore

/// The configuration as read from disk and checked against this system: what startup,
/// `--check-config` and every reload use, so all three judge a file the same way.
public struct LoadedConfiguration: Sendable {
    public var configuration: DaemonConfiguration
    /// The gid `SocketGroup=` names.
    public var socketGroupID: UInt32?
    public var diagnostics: [ConfigDiagnostic]

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Reads `mainPath` and its drop-ins, then resolves names in the system databases.
    ///
    /// - Parameter mainFileRequired: true when the user named the file; the default may be absent.
    public static func load(mainPath: String, mainFileRequired: Bool) -> LoadedConfiguration {
        var (configuration, diagnostics, files) = ConfigurationFiles.load(
            mainPath: mainPath, mainFileRequired: mainFileRequired)
        var groupID: UInt32?
        if let group = configuration.socketGroup {
            groupID = SystemUsers.groupID(named: group)
            if groupID == nil {
                let location = configuration.locations["SocketGroup"] ?? SourceLocation(file: mainPath, line: 0)
                diagnostics.append(ConfigDiagnostic(.error, at: location, "SocketGroup=\(group): no such group"))
            }
        }
        return LoadedConfiguration(
            configuration: configuration, socketGroupID: groupID,
            diagnostics: ConfigDiagnostic.inReadingOrder(diagnostics, files: files))
    }
}
