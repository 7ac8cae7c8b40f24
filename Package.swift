// swift-tools-version:6.1
import Foundation
import PackageDescription

// The executables' relocations packed (DT_RELR, glibc 2.36+), which gold cannot write:
// the dynamic linker otherwise reads a megabyte of them at every start, into memory
// that stays resident.
let packedRelocations: [LinkerSetting] = [
    .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux]))
]

// Arrows point one way: protocol types ← core logic ← I/O shells ← bus ← application ←
// transport ← executables.
// Only the C wrappers (LLMDCurl, LLMDSystemd, LLMDStore, LLMDLineEditor) import the C modules.
let package = Package(
    name: "llmd",
    products: [
        .executable(name: "llmd", targets: ["llmd"]),
        .executable(name: "llmctl", targets: ["llmctl"]),
        .library(name: "LLMDClient", targets: ["LLMDClient"]),
    ],
    // Exact versions: Package.resolved is not kept, so these lines alone decide what builds.
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
    ],
    targets: [
        // C libraries, each reached only through its Swift wrapper below.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .systemLibrary(
            name: "CEditLine",
            pkgConfig: "libedit",
            providers: [.apt(["libedit-dev"])]
        ),

        // Wire protocol: JSON codec, line framing, messages, error codes. No I/O, no Foundation.
        .target(name: "LLMDProtocol"),

        // The callback model in-process: handlers, the run tree's callback manager, event
        // filters and the subscription flow with its lag rule. Pure.
        .target(
            name: "LLMDEvents",
            dependencies: ["LLMDProtocol", .product(name: "Logging", package: "swift-log")]
        ),

        // SQLite files: the event journal, the sessions with their memory, the usage ledger.
        .target(name: "LLMDStore", dependencies: ["CSQLite", "LLMDProtocol"]),

        // OpenAI-compatible wire formats: request and response bodies, server-sent events,
        // error bodies and when to retry. Pure, so every upstream quirk is testable without a socket.
        .target(name: "LLMDOpenAI", dependencies: ["LLMDProtocol"]),

        // tiktoken's byte-level BPE (cl100k_base, o200k_base): exact token counts for usage
        // estimates, memory limits and `llmctl tokens`. Pure; vocabularies are data files.
        .target(name: "LLMDTokenizer"),

        // Conversation memory: LangChain's memory strategies, prompt styles and templates,
        // token limits and context windows. Pure; summarising calls are the caller's.
        .target(name: "LLMDMemory", dependencies: ["LLMDTokenizer"]),

        // What calls cost: usage with its source, estimates for calls the server did not
        // count, the price table, and budgets with reservations. Pure.
        .target(name: "LLMDUsage", dependencies: ["LLMDMemory", "LLMDProtocol"]),

        // Command lines of llmd and llmctl, parsed without reflection so the CLI starts fast.
        .target(name: "LLMDCommandLine"),

        // Pure daemon logic: configuration, access policy, request routing.
        .target(
            name: "LLMDCore",
            dependencies: [
                "LLMDProtocol",
                "LLMDCommandLine",
                "LLMDUsage",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // llmd's metrics: their names, bounded labels (unknown models folded into `other`),
        // recorded through swift-metrics' API into the factory `main` gives. Pure.
        .target(
            name: "LLMDMetrics",
            dependencies: ["LLMDProtocol", "LLMDUsage", "LLMDMemory", .product(name: "CoreMetrics", package: "swift-metrics")]
        ),

        // Services and their ordered graceful shutdown on signals; dedicated threads.
        .target(
            name: "LLMDLifecycle",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),

        // I/O shells around C libraries.
        .target(
            name: "LLMDSystemd",
            dependencies: [
                "CSystemd",
                "LLMDEvents",
                "LLMDProtocol",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "LLMDCurl", dependencies: ["CCurl", "LLMDLifecycle", "LLMDProtocol"]),

        // llmctl chat's prompt: libedit's line editing and history, with output printed
        // above the line being typed.
        .target(name: "LLMDLineEditor", dependencies: ["CEditLine"]),

        // LLM calls: providers, retries, streaming, the offline provider.
        .target(
            name: "LLMDUpstream",
            dependencies: [
                "LLMDCore",
                "LLMDCurl",
                "LLMDOpenAI",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The event bus: numbers every event, keeps the recent ones, journals them, fans them
        // out to subscribers' outboxes and replays what a subscriber missed. NIOCore only for
        // ByteBuffer, the lines shared by all subscribers; no channels.
        .target(
            name: "LLMDBus",
            dependencies: [
                "LLMDCore",
                "LLMDEvents",
                "LLMDLifecycle",
                "LLMDProtocol",
                "LLMDStore",
                "LLMDSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // What the daemon's methods do, whatever carries them: sessions and their turns, calls,
        // billing and usage, providers, configuration and its reloading. No NIO.
        .target(
            name: "LLMDApplication",
            dependencies: [
                "LLMDBus",
                "LLMDCore",
                "LLMDEvents",
                "LLMDMemory",
                "LLMDStore",
                "LLMDUsage",
                "LLMDTokenizer",
                "LLMDLifecycle",
                "LLMDMetrics",
                "LLMDSystemd",
                "LLMDUpstream",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The Unix socket: listening, connections and their outboxes, the peer check, limits
        // on what clients may hold. The only code using NIO's channels.
        .target(
            name: "LLMDTransport",
            dependencies: [
                "LLMDApplication",
                "LLMDBus",
                "LLMDCore",
                "LLMDProtocol",
                "LLMDLifecycle",
                "LLMDSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The OpenAI-compatible HTTP API: a second transport over the same method table,
        // on NIO's HTTP/1.1 codec; the OpenAI request and response shapes as pure values.
        .target(
            name: "LLMDHTTP",
            dependencies: [
                "LLMDApplication",
                "LLMDCore",
                "LLMDProtocol",
                "LLMDLifecycle",
                "LLMDTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Typed, blocking client library: what llmctl and the tests use. No NIO, no Foundation,
        // so the CLI starts in a few milliseconds.
        .target(name: "LLMDClient", dependencies: ["LLMDProtocol"]),

        .executableTarget(
            name: "llmd",
            dependencies: [
                "LLMDTransport", "LLMDHTTP", "LLMDApplication", "LLMDBus", "LLMDCurl", "LLMDMetrics",
                // The one place a metrics backend is chosen: Prometheus's registry, read at /metrics.
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            linkerSettings: packedRelocations
        ),
        .executableTarget(
            name: "llmctl",
            dependencies: ["LLMDClient", "LLMDCommandLine", "LLMDLineEditor", "LLMDMemory", "LLMDUsage"],
            linkerSettings: packedRelocations
        ),

        // Helpers shared by the test targets: temporary directories, spawning real processes.
        .target(
            name: "LLMDTesting",
            dependencies: ["LLMDClient", "LLMDProtocol"],
            path: "Tests/LLMDTesting"
        ),
        .testTarget(name: "LLMDProtocolTests", dependencies: ["LLMDProtocol"]),
        .testTarget(name: "LLMDTokenizerTests", dependencies: ["LLMDTokenizer"]),
        .testTarget(name: "LLMDEventsTests", dependencies: ["LLMDEvents"]),
        .testTarget(name: "LLMDMemoryTests", dependencies: ["LLMDMemory"]),
        .testTarget(name: "LLMDUsageTests", dependencies: ["LLMDUsage", "LLMDProtocol"]),
        .testTarget(name: "LLMDStoreTests", dependencies: ["LLMDStore", "LLMDTesting"]),
        .testTarget(name: "LLMDCommandLineTests", dependencies: ["LLMDCommandLine"]),
        .testTarget(name: "LLMDOpenAITests", dependencies: ["LLMDOpenAI", "LLMDTesting"]),
        .testTarget(name: "LLMDCurlTests", dependencies: ["LLMDCurl", "LLMDTesting"]),
        .testTarget(name: "LLMDUpstreamTests", dependencies: ["LLMDUpstream", "LLMDTesting"]),
        .testTarget(name: "LLMDCoreTests", dependencies: ["LLMDCore", "LLMDUsage"]),
        .testTarget(
            name: "LLMDMetricsTests",
            dependencies: [
                "LLMDMetrics", "LLMDProtocol", "LLMDUsage", .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .testTarget(name: "LLMDBusTests", dependencies: ["LLMDBus"]),
        .testTarget(name: "LLMDApplicationTests", dependencies: ["LLMDApplication", "LLMDTesting"]),
        .testTarget(
            name: "LLMDTransportTests",
            dependencies: ["LLMDTransport", "LLMDBus", "LLMDTesting", .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "LLMDLifecycleTests", dependencies: ["LLMDLifecycle"]),
        .testTarget(name: "LLMDHTTPTests", dependencies: ["LLMDHTTP", "LLMDProtocol"]),
        .testTarget(name: "LLMDSystemdTests", dependencies: ["LLMDSystemd"]),
        .testTarget(name: "LLMDLineEditorTests", dependencies: ["LLMDLineEditor", "LLMDTesting"]),
        .testTarget(name: "LLMDClientTests", dependencies: ["LLMDClient"]),
        // A line editor on a real terminal, for LLMDLineEditorTests to drive through a pty.
        .executableTarget(
            name: "LineEditorDriver",
            dependencies: ["LLMDLineEditor"],
            path: "Tests/LineEditorDriver"
        ),
        .testTarget(
            name: "LLMDIntegrationTests",
            // LLMDStore only to measure the files the daemon writes.
            dependencies: ["LLMDTesting", "LLMDClient", "LLMDProtocol", "LLMDStore"]
        ),
    ]
)

// Tokenizer throughput for `make bench`, compared with Python's tiktoken in the same run.
package.targets.append(
    .executableTarget(
        name: "TokenizerBenchmark",
        dependencies: ["LLMDTokenizer"],
        path: "Benchmarks/TokenizerBenchmark"
    ))

// The libFuzzer harness (`make fuzz`, which instruments the whole build with
// -sanitize=fuzzer) exists only when asked for: its main is libFuzzer's driver.
if ProcessInfo.processInfo.environment["LLMD_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "UpstreamFuzzer",
            dependencies: ["LLMDOpenAI", "LLMDProtocol"],
            path: "Fuzz/UpstreamFuzzer",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ))
}
