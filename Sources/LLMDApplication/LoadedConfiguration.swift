import LLMDCore
import LLMDProtocol

/// The configuration as read from disk and checked against this system: what startup,
/// `--check-config` and every reload use, so all three judge a file the same way.
public struct LoadedConfiguration: Sendable {
    public var configuration: DaemonConfiguration
    /// The gid `SocketGroup=` names.
    public var socketGroupID: UInt32?
    /// Every provider a call may use, keys read.
    public var providers: [ResolvedProvider]
    /// The provider for calls that name none.
    public var defaultProvider: String
    public var diagnostics: [ConfigDiagnostic]

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Reads `mainPath` and its drop-ins, then resolves names in the system databases.
    ///
    /// - Parameters:
    ///   - mainFileRequired: true when the user named the file; the default may be absent.
    ///   - environment: looks up variables (`OPENAI_API_KEY`, `APIKeyEnvironment=`).
    ///   - checkingSystem: false judges the files alone (`--check-config --offline`): no
    ///     group is looked up, no key or reply file read, no variable required.
    public static func load(
        mainPath: String, mainFileRequired: Bool,
        environment: (String) -> String? = SocketLocation.processEnvironment, checkingSystem: Bool = true
    ) -> LoadedConfiguration {
        var (configuration, diagnostics, files) = ConfigurationFiles.load(
            mainPath: mainPath, mainFileRequired: mainFileRequired)
        var groupID: UInt32?
        if checkingSystem, let group = configuration.socketGroup {
            groupID = SystemUsers.groupID(named: group)
            if groupID == nil {
                let location = configuration.locations["SocketGroup"] ?? SourceLocation(file: mainPath, line: 0)
                diagnostics.append(ConfigDiagnostic(.error, at: location, "SocketGroup=\(group): no such group"))
            }
        }
        let providers = resolveProviders(
            configuration, environment: environment, mainPath: mainPath, checkingSystem: checkingSystem)
        diagnostics += providers.diagnostics
        return LoadedConfiguration(
            configuration: configuration, socketGroupID: groupID, providers: providers.providers,
            defaultProvider: providers.defaultProvider,
            diagnostics: ConfigDiagnostic.inReadingOrder(diagnostics, files: files))
    }
}
