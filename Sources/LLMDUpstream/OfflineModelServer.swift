import LLMDCore
import LLMDOpenAI

/// llmd's offline provider (`Type=fake`): scripted or derived replies, no network, free.
/// For trying llmd without a key, for the demo, and for tests.
struct OfflineModelServer: ModelServer {
    var builtInModel: String? { "fake" }
    var isFree: Bool { true }
    var isOffline: Bool { true }

    func listModels(provider: ResolvedProvider, client: UpstreamClient, timeout: Duration) async throws(UpstreamError) -> [String] {
        ["fake"]
    }

    /// A summarising memory's prompt (LangChain's progressive summary) gets a summary, not
    /// an echo, so offline sessions show what summarising memories keep: the previous
    /// summary, then what the human said in each new line.
    static func fakeSummary(of prompt: String) -> String? {
        let marker = "New lines of conversation:\n"
        guard prompt.hasPrefix("Progressively summarize the lines of conversation provided"),
            let linesStart = prompt.ranges(of: marker).last?.upperBound,
            let summaryStart = prompt.ranges(of: "Current summary:\n").last?.upperBound,
            summaryStart < linesStart
        else { return nil }
        let previous = prompt[summaryStart..<prompt.ranges(of: "\n\n" + marker).last!.lowerBound]
        let lines = prompt[linesStart...].split(separator: "\n").compactMap { line -> String? in
            if line.hasPrefix("Human: ") { return "The human said \"\(line.dropFirst(7))\"." }
            if line.hasPrefix("AI: ") { return "The AI answered." }
            return nil
        }
        return ([String(previous)].filter { !$0.isEmpty } + lines).joined(separator: " ")
    }

    /// How many tokens of a stream without pauses the offline provider hands over at once:
    /// about what one read of such a stream from a real server holds.
    static let flatOutTokensPerRead = 64

    /// LangChain's `FakeListChatModel`, daemon-side: the configured replies in turn, or,
    /// with none, a reply derived from the input, streamed word by word.
    func call(_ call: ModelCall, client: UpstreamClient) async throws(CallFailure) -> CallResult {
        let (model, input, stream, provider, observer) =
            (call.model, call.input, call.stream, call.provider.configuration, call.observer)
        let started = ContinuousClock.now
        let text: String
        if provider.fakeReplies.isEmpty {
            let said: String
            switch input {
            case .messages(let messages): said = messages.last { $0.role == "user" }?.content ?? ""
            case .prompt(let prompt): said = prompt
            }
            text = Self.fakeSummary(of: said) ?? "[fake] You said: " + said
        } else {
            text = provider.fakeReplies[client.nextOfflineTurn(provider: provider.name) % provider.fakeReplies.count]
        }
        var firstToken: Duration?
        var delivered = ""
        if stream {
            // Without a delay the stream runs flat out, as fast as the daemon takes it, and
            // is handed over as a server's would be read then: many tokens at a time.
            let tokens = FakeTokens.split(text)
            let groupSize = provider.fakeTokenDelay > .zero ? 1 : Self.flatOutTokensPerRead
            for start in stride(from: 0, to: tokens.count, by: groupSize) {
                do {
                    if provider.fakeTokenDelay > .zero {
                        try await Task.sleep(for: provider.fakeTokenDelay)
                    } else {
                        try Task.checkCancellation()
                    }
                } catch {
                    throw CallFailure(
                        error: UpstreamError(.cancelled, "the call was cancelled"), partialText: delivered,
                        tokensDelivered: start, attempts: 1)
                }
                if firstToken == nil { firstToken = ContinuousClock.now - started }
                let group = Array(tokens[start..<min(start + groupSize, tokens.count)])
                delivered += group.joined()
                observer.tokens(group)
            }
        }
        return CallResult(
            text: text, finishReason: "stop", usage: nil, model: model, provider: provider.name, attempts: 1, timeToFirstToken: firstToken,
            duration: ContinuousClock.now - started)
    }
}

/// Word-sized tokens for the offline provider's stream; the daemon counts its usage.
enum FakeTokens {
    /// Splits after each space, so the pieces join back to the text.
    static func split(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if character == " " {
                tokens.append(current)
                current = ""
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }
}
