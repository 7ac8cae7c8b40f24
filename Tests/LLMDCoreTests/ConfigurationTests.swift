import LLMDProtocol
import LLMDUsage
import Logging
import Testing

@testable import LLMDCore

@Suite("Configuration")
struct ConfigurationTests {
    private func parse(_ files: (String, String)...) -> (DaemonConfiguration, [ConfigDiagnostic]) {
        DaemonConfiguration.parse(files: files.map { (path: $0.0, text: $0.1) })
    }

    @Test("defaults apply with no files")
    func defaults() {
        let (config, diagnostics) = parse()
        #expect(diagnostics.isEmpty)
        #expect(config == DaemonConfiguration())
        #expect(config.maximumLineLength == 1 << 20)
        #expect(config.shutdownTimeout == .seconds(10))
        #expect(config.logLevel == .info)
    }

    @Test("'#' after a value or a section header is not a comment: an error that says so, at its line")
    func inlineComments() {
        let (config, diagnostics) = parse(
            (
                "llmd.conf",
                """
                [Provider openai]
                DefaultModel=gpt-4o-mini   # the cheap one
                BaseURL=https://example.org/v1#fragment

                [Provider local]\t# Ollama
                DefaultModel=llama3

                [Provider canned]
                Type=fake
                Reply=Use C# or F #1
                """
            ))
        #expect(
            diagnostics.map(\.description) == [
                "llmd.conf:2: error: DefaultModel=gpt-4o-mini   # the cheap one: '#' begins a comment only at the start of "
                    + "a line; move '# the cheap one' to a line of its own",
                "llmd.conf:5: error: malformed section header '[Provider local]\t# Ollama': '#' begins a comment only at "
                    + "the start of a line; move '# Ollama' to a line of its own",
            ])
        let providers = Dictionary(uniqueKeysWithValues: config.providers.map { ($0.name, $0) })
        #expect(providers["openai"]?.defaultModel == nil, "the refused value is not used")
        #expect(providers["openai"]?.baseURL == "https://example.org/v1#fragment", "'#' inside a word is text")
        #expect(providers["local"]?.defaultModel == "llama3", "the lines under a refused header keep their section")
        #expect(providers["canned"]?.fakeReplies == ["Use C# or F #1"], "free text keeps its '#'")
    }

    @Test("CRLF line ends are line ends: a file from Windows is read line by line, its errors found")
    func crlf() {
        let (config, diagnostics) = parse(
            ("llmd.conf", "# written on Windows\r\n[Daemon]\r\nLogLevel=debug\r\nMaxLineBytes=12\r\n\r\n[Provider x]\r\nDefaultModel=m\r\n"))
        #expect(config.logLevel == .debug)
        #expect(config.providers.first?.defaultModel == "m")
        #expect(diagnostics.map(\.description) == ["llmd.conf:4: error: invalid MaxLineBytes=12: MaxLineBytes= must be between 1K and 256M, got 12"])
    }

    @Test("an inline key is refused by name: its value never appears in a message")
    func inlineKeyNotShown() {
        let (_, diagnostics) = parse(
            ("llmd.conf", "[Provider openai]\nAPIKey=sk-live-secret-0123\nAPIKey=sk-live-secret-4567   # mine\n"))
        #expect(diagnostics.count == 2)
        #expect(diagnostics.allSatisfy { !$0.message.contains("sk-live") }, "\(diagnostics)")
        #expect(diagnostics[0].message.hasPrefix("invalid APIKey=(value not shown): API keys are not accepted inline"))
    }

    @Test("every key is read, with comments, blank lines and continuations")
    func allKeys() {
        let (config, diagnostics) = parse(
            (
                "llmd.conf",
                """
                # llmd settings
                ; another comment
                [Daemon]
                Socket = /run/llmd/other.sock
                SocketMode=0666
                SocketGroup=llmd
                LogLevel=Debug
                MaxLineBytes=64K
                ShutdownTimeoutSec=\\
                # a comment inside a continuation is skipped
                  500ms
                """
            ))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(config.socketPath == "/run/llmd/other.sock")
        #expect(config.socketMode == 0o666)
        #expect(config.socketGroup == "llmd")
        #expect(config.logLevel == .debug)
        #expect(config.maximumLineLength == 64 * 1024)
        #expect(config.shutdownTimeout == .milliseconds(500))
    }

    @Test("drop-ins apply after the main file, and an empty value resets to the default")
    func dropInsOverride() {
        let (config, diagnostics) = parse(
            ("llmd.conf", "[Daemon]\nLogLevel=debug\nMaxLineBytes=2M\n"),
            ("llmd.conf.d/10-a.conf", "[Daemon]\nLogLevel=error\n"),
            ("llmd.conf.d/20-b.conf", "[Daemon]\nMaxLineBytes=\n"))
        #expect(diagnostics.isEmpty)
        #expect(config.logLevel == .error)
        #expect(config.maximumLineLength == 1 << 20)
    }

    @Test("bad values are errors with file and line; unknown keys and sections are warnings")
    func diagnostics() {
        let (config, diagnostics) = parse(
            (
                "/etc/llmd/llmd.conf",
                """
                [Daemon]
                LogLevel=loud
                MaxLineBytes=12
                Colour=blue
                SocketMode=999
                Socket=relative.sock
                ShutdownTimeoutSec=soon
                [Future]
                Key=1
                orphan line
                """
            ))
        #expect(
            diagnostics.map(\.description) == [
                "/etc/llmd/llmd.conf:2: error: invalid LogLevel=loud: expected one of trace, debug, info, notice, warning, error, critical",
                "/etc/llmd/llmd.conf:3: error: invalid MaxLineBytes=12: MaxLineBytes= must be between 1K and 256M, got 12",
                "/etc/llmd/llmd.conf:4: warning: unknown key 'Colour' in section [Daemon], ignored",
                "/etc/llmd/llmd.conf:5: error: invalid SocketMode=999: expected an octal mode such as 0660",
                "/etc/llmd/llmd.conf:6: error: invalid Socket=relative.sock: socket path must be absolute",
                "/etc/llmd/llmd.conf:7: error: invalid ShutdownTimeoutSec=soon: expected a time span such as 10, 10s, 500ms, 200us, 2min or 30d",
                "/etc/llmd/llmd.conf:9: warning: unknown section [Future], ignored",
                "/etc/llmd/llmd.conf:10: error: expected Key=Value, got 'orphan line'",
            ])
        // Rejected values leave the defaults in place.
        #expect(config.logLevel == .info)
        #expect(config.maximumLineLength == 1 << 20)
    }

    @Test("syntax errors: assignments outside sections, broken headers, a dangling continuation")
    func syntax() {
        let (_, diagnostics) = parse(("c.conf", "Socket=/x\n[Daemon\n[Daemon]\n=1\nLogLevel=info\\"))
        #expect(
            diagnostics.map(\.description) == [
                "c.conf:1: error: assignment to 'Socket' outside of any section",
                "c.conf:2: error: malformed section header '[Daemon'",
                "c.conf:4: error: assignment without a key",
                "c.conf:5: error: file ends inside a continued line",
            ])
    }

    @Test(
        "time spans in systemd's units",
        arguments: [
            ("10", 10_000_000), ("10s", 10_000_000), ("500ms", 500_000), ("2min", 120_000_000), ("1h", 3_600_000_000),
            ("1.5s", 1_500_000), ("200us", 200), ("0.5ms", 500),
        ]
    )
    func timeSpans(text: String, microseconds: Int64) throws {
        #expect(try parseTimeSpan(text) == .microseconds(microseconds))
    }

    @Test("sizes with binary suffixes", arguments: [("4096", 4096), ("64K", 65_536), ("1m", 1 << 20)])
    func sizes(text: String, bytes: Int) throws {
        #expect(try parseByteSize(text) == bytes)
    }

    @Test("a reload names what it cannot fully apply")
    func reloadWarnings() {
        var changed = DaemonConfiguration()
        changed.socketPath = "/x.sock"
        changed.logLevel = .debug
        changed.maximumLineLength = 4096
        #expect(
            changed.reloadWarnings(comparedTo: DaemonConfiguration()) == [
                "Socket= changed; llmd keeps listening on its current socket until restarted",
                "LogLevel= changed; it takes effect at the next restart",
            ])
        #expect(DaemonConfiguration().reloadWarnings(comparedTo: DaemonConfiguration()).isEmpty)
        // With --log-level and --socket given, the file's values do not matter.
        #expect(changed.reloadWarnings(comparedTo: DaemonConfiguration(), ignoring: ["LogLevel", "Socket"]).isEmpty)
    }

    @Test("providers: sections, keys, a section named fake stays offline, padded names keep their lines")
    func providers() {
        let (config, diagnostics) = parse(
            (
                "p.conf",
                """
                [Daemon]
                DefaultProvider=local
                [Provider local]
                BaseURL=http://localhost:11434/v1/
                Header=X-A: 1
                Header=X-B: 2
                IdleTimeoutSec=0
                [Provider fake]
                Reply=hello
                [Provider  spaced ]
                MaxRetries=99
                """
            ))
        #expect(diagnostics.map(\.description) == ["p.conf:11: error: invalid MaxRetries=99: expected a number from 0 to 20"])
        #expect(config.defaultProvider == "local")
        #expect(config.providers.map(\.name) == ["local", "fake", "spaced"])
        #expect(config.providers[0].baseURL == "http://localhost:11434/v1")
        #expect(config.providers[0].headers == ["X-A: 1", "X-B: 2"])
        #expect(config.providers[0].idleTimeout == .zero)
        #expect(config.providers[1].kind == .fake)
        #expect(config.providers[1].fakeReplies == ["hello"])
        #expect(config.locations["Provider local.BaseURL"] == SourceLocation(file: "p.conf", line: 4))
    }

    @Test("model prices and budgets: exact decimals, a half-set price is ignored with a warning")
    func pricesAndBudgets() {
        let (config, diagnostics) = parse(
            (
                "b.conf",
                """
                [Model llama3:8b]
                InputPrice=0
                OutputPrice=0
                [Model gpt-4o]
                InputPrice=2.125
                CachedInputPrice=1
                OutputPrice=8.5
                [Model half]
                InputPrice=1
                [Model bad]
                InputPrice=0.0000001
                [Budget]
                DailyCost=5
                SessionTokens=100000
                ScopeCost=0.25
                ReplyTokens=512
                MonthlyCost=1
                """
            ))
        #expect(
            diagnostics.map(\.description) == [
                "b.conf:9: warning: [Model half] needs both InputPrice= and OutputPrice=; its configured price is ignored",
                "b.conf:11: error: invalid InputPrice=0.0000001: expected USD per million tokens, such as 2.50 (at most 6 decimals)",
                "b.conf:17: warning: unknown key 'MonthlyCost' in section [Budget], ignored",
            ])
        #expect(config.models.first { $0.name == "llama3:8b" }?.price == .free)
        #expect(
            config.models.first { $0.name == "gpt-4o" }?.price
                == Price(input: USD(parsing: "2.125")!, cachedInput: USD(parsing: "1")!, output: USD(parsing: "8.5")!))
        #expect(config.models.first { $0.name == "half" }?.price == nil)
        #expect(config.budget.defaults[.daily] == BudgetLimit(cost: USD(parsing: "5")))
        #expect(config.budget.defaults[.session] == BudgetLimit(tokens: 100_000))
        #expect(config.budget.defaults[.scope] == BudgetLimit(cost: USD(parsing: "0.25")))
        #expect(config.budget.replyTokens == 512)
    }

    /// A bounded time span setting: its key, where it lands, its default, a value within
    /// the bound as written and parsed, one over it, and the bound as the error writes it.
    typealias BoundedSpan = (
        key: String, value: (EventsConfiguration) -> Duration, default: Duration, within: String, parsed: Duration,
        over: String, bound: String
    )

    @Test("JournalCommitDelaySec= and TokenBatchSec=: a span within the bound; zero is off; empty restores the default")
    func boundedTimeSpans() {
        let cases: [BoundedSpan] = [
            ("JournalCommitDelaySec", \.journalCommitDelay, .milliseconds(5), "20ms", .milliseconds(20), "2min", "1s"),
            ("TokenBatchSec", \.tokenBatch, .microseconds(500), "250us", .microseconds(250), "20ms", "10ms"),
        ]
        for setting in cases {
            func parse(_ values: String...) -> (Duration, [String]) {
                let text = "[Events]\n" + values.map { "\(setting.key)=\($0)\n" }.joined()
                let (config, diagnostics) = DaemonConfiguration.parse(files: [("e.conf", text)])
                return (setting.value(config.events), diagnostics.map(\.description))
            }
            #expect(setting.value(DaemonConfiguration().events) == setting.default)
            let (within, diagnostics) = parse(setting.within, setting.over)
            #expect(within == setting.parsed)
            #expect(
                diagnostics == [
                    "e.conf:3: error: invalid \(setting.key)=\(setting.over): \(setting.key)= must be at most \(setting.bound)"
                ])
            #expect(parse("1ms", "0").0 == .zero)
            #expect(parse("1ms", "").0 == setting.default)
        }
    }

    @Test("OPENAI_API_KEY and OPENAI_BASE_URL make a provider with a default model; a trailing slash is trimmed")
    func environmentProvider() {
        let provider = ProviderConfiguration.fromEnvironment {
            ["OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://localhost:8000/v1/"][$0]
        }
        #expect(provider?.baseURL == "http://localhost:8000/v1")
        #expect(provider?.apiKeyEnvironment == "OPENAI_API_KEY")
        #expect(provider?.defaultModel == "gpt-4o-mini")
        #expect(ProviderConfiguration.fromEnvironment { _ in nil } == nil)
    }

    @Test("the location of each applied key is kept")
    func locations() {
        let (config, _) = parse(("a.conf", "[Daemon]\nSocketGroup=llmd\n"), ("b.conf", "\n[Daemon]\nSocketGroup=wheel\n"))
        #expect(config.locations["SocketGroup"] == SourceLocation(file: "b.conf", line: 3))
    }

    @Test("an indented comment inside a continued value is skipped")
    func indentedCommentInContinuation() {
        let (config, diagnostics) = parse(("c.conf", "[Daemon]\nShutdownTimeoutSec=\\\n    # why\n  3s\n"))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(config.shutdownTimeout == .seconds(3))
    }

    @Test("a comment ending in a backslash does not swallow the next line")
    func commentBackslash() {
        let (config, diagnostics) = parse(("c.conf", "# see C:\\\n[Daemon]\nLogLevel=debug\n"))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(config.logLevel == .debug)
    }

    @Test("default config path: /etc for the system instance, XDG_CONFIG_HOME or ~/.config for users")
    func defaultPaths() {
        #expect(Instance.system.configPath(environment: { _ in "/ignored" }) == "/etc/llmd/llmd.conf")
        #expect(
            Instance.user.configPath(environment: { ["XDG_CONFIG_HOME": "/cfg", "HOME": "/h"][$0] })
                == "/cfg/llmd/llmd.conf")
        #expect(Instance.user.configPath(environment: { ["HOME": "/home/ann"][$0] }) == "/home/ann/.config/llmd/llmd.conf")
    }

    @Test("socket defaults per instance")
    func socketDefaults() {
        let environment = ["XDG_RUNTIME_DIR": "/run/user/1000"]
        #expect(Instance.system.socketPath(uid: 999, environment: { environment[$0] }) == "/run/llmd/llmd.sock")
        #expect(Instance.user.socketPath(uid: 1000, environment: { environment[$0] }) == "/run/user/1000/llmd/llmd.sock")
        #expect(Instance.system.defaultSocketMode == 0o660)
        #expect(Instance.user.defaultSocketMode == 0o600)
    }
}

@Suite("Peer policy")
struct PeerPolicyTests {
    let policy = PeerPolicy(daemonUID: 1000, allowedGroup: nil)

    @Test("the daemon's own uid and root are admitted, others refused")
    func ownerAndRoot() {
        #expect(policy.admits(PeerCredentials(pid: 1, uid: 1000, gid: 1000), groups: []))
        #expect(policy.admits(PeerCredentials(pid: 1, uid: 0, gid: 0), groups: []))
        #expect(!policy.admits(PeerCredentials(pid: 1, uid: 1001, gid: 1000), groups: [1000]))
    }

    @Test("members of the allowed group are admitted by primary or supplementary group")
    func group() {
        let grouped = PeerPolicy(daemonUID: 999, allowedGroup: 500)
        #expect(grouped.admits(PeerCredentials(pid: 1, uid: 1001, gid: 500), groups: []))
        #expect(grouped.admits(PeerCredentials(pid: 1, uid: 1001, gid: 1001), groups: [27, 500]))
        #expect(!grouped.admits(PeerCredentials(pid: 1, uid: 1001, gid: 1001), groups: [27]))
    }

    @Test("a refusal names the code and the peer")
    func refusal() {
        let error = policy.refusal(of: PeerCredentials(pid: 5, uid: 65534, gid: 65534))
        #expect(error.code == .peerRefused)
        #expect(error.detail["uid"] == 65534)
    }
}

@Suite("Method table")
struct MethodTableTests {
    let context = RequestContext(connectionID: 1, peer: PeerCredentials(pid: 1, uid: 0, gid: 0))

    @Test("unknown methods get request.unknown_method listing what exists")
    func unknown() async {
        var table = MethodTable()
        table.register(.ping) { _, _ in ["pong": true] }
        let reply = await table.handle(Request(id: .int(4), method: "pong"), context: context)
        guard case .error(let id, let error) = reply else {
            Issue.record("expected an error, got \(reply)")
            return
        }
        #expect(id == .int(4))
        #expect(error.code == .unknownMethod)
        // Those registered, and those every connection answers itself.
        #expect(error.detail["methods"] == ["ack", "cancel", "ping", "subscribe", "unsubscribe"])
    }

    @Test("handler errors become error replies with the request id")
    func handlerErrors() async {
        var table = MethodTable()
        table.register(.status) { request, _ throws(ProtocolError) in
            _ = try request.params.int("n")
            return [:]
        }
        let reply = await table.handle(Request(id: .string("r"), method: "status", params: ["n": "x"]), context: context)
        #expect(reply == .error(id: .string("r"), .invalidParam("n", expected: "an integer", got: "x")))
    }

    @Test("core methods answer hello, ping and status, and refuse other protocol versions")
    func coreMethods() async throws {
        var table = MethodTable()
        let state = DaemonState(pid: 77, socketPath: "/tmp/s.sock")
        CoreMethods.register(in: &table, state: state)
        #expect(table.methods == ["ack", "cancel", "hello", "ping", "status", "subscribe", "unsubscribe"])

        let hello = await table.handle(Request(id: .int(1), method: "hello", params: ["protocol": 1]), context: context)
        guard case .reply(_, let result) = hello else { throw Failure("hello failed: \(hello)") }
        #expect(result["pid"] == 77)

        let wrongVersion = await table.handle(
            Request(id: .int(2), method: "hello", params: ["protocol": 2]), context: context)
        guard case .error(_, let error) = wrongVersion else { throw Failure("hello v2 accepted") }
        #expect(error.code == .unsupportedVersion)

        state.clientConnected()
        state.requestStarted()
        let status = await table.handle(Request(id: .int(3), method: "status"), context: context)
        guard case .reply(_, let fields) = status else { throw Failure("status failed") }
        #expect(fields["clients"] == 1)
        #expect(fields["requests_in_flight"] == 1)
        #expect(fields["socket"] == "/tmp/s.sock")
        #expect(state.statusLine == "Serving 0 sessions, 1 clients, 1 requests in flight")
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite("SHA-256")
struct SHA256Tests {
    @Test("FIPS 180-4's examples, and a message across two blocks")
    func vectors() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(String(repeating: "a", count: 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
