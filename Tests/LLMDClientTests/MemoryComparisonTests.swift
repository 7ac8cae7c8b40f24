import Foundation
import LLMDClient
import LLMDProtocol
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

typealias Tokens = MemoryComparison.Tokens

/// Two strategies over three turns, small enough to add up by hand:
/// buffer 15 + 26 + 37 = 78; window (k=1) 15 + 26 + 27 = 68; summary 115 + 128 + 141 = 384.
let sample = MemoryComparison(
    messages: ["Hi", "Pink roses", "Why did I come?"],
    strategies: [
        .init(
            name: "buffer",
            turns: [Tokens(prompt: 10, completion: 5), Tokens(prompt: 20, completion: 6), Tokens(prompt: 30, completion: 7)]),
        .init(
            name: "window", parameter: .init(name: "k", value: 1),
            turns: [Tokens(prompt: 10, completion: 5), Tokens(prompt: 20, completion: 6), Tokens(prompt: 20, completion: 7)]),
        .init(
            name: "summary",
            turns: [
                Tokens(prompt: 10, completion: 5, summarising: 100), Tokens(prompt: 12, completion: 6, summarising: 110),
                Tokens(prompt: 14, completion: 7, summarising: 120),
            ]),
    ])

@Suite("Memory comparison: numbers and table")
struct MemoryComparisonTableTests {
    @Test("a turn's tokens are the reply's usage plus every summarising call's total")
    func turnResult() throws {
        func usage(_ source: UsageSource, _ prompt: Int, _ completion: Int) -> CallUsage {
            CallUsage(tokens: TokenUsage(promptTokens: prompt, completionTokens: completion, source: source), cost: nil, costUnknown: nil)
        }
        func turn(_ reply: CallUsage, summaries: [CallUsage]) -> SendMethod.Result {
            SendMethod.Result(
                reply: CallReply(
                    text: "", finishReason: nil, model: "m", provider: "p", usage: reply, attempts: 1, durationMilliseconds: 0,
                    timeToFirstTokenMilliseconds: nil, offline: false),
                runID: "r", memory: MemoryReport(
                    strategy: "buffer", keptMessages: 0, dropped: 0, leftWindow: 0, summarized: 0, historyTokens: 0,
                    counted: TokenCounting(exact: false, encoding: nil), k: nil, maxTokens: nil),
                summaryError: nil, summaryUsage: summaries, promptTokensCounted: 0, commitMicroseconds: nil, session: "s",
                turn: 1, created: false, changed: [], settings: [:])
        }
        let tokens = Tokens(
            turnResult: turn(usage(.estimated, 20, 20), summaries: [usage(.estimated, 220, 25), usage(.provider, 20, 10)]))
        #expect(tokens == Tokens(prompt: 20, completion: 20, summarising: 275, usageSources: ["estimated", "provider"]))
        #expect(tokens.total == 315)
        let bare = Tokens(turnResult: turn(usage(.provider, 0, 0), summaries: []))
        #expect(bare == Tokens(prompt: 0, completion: 0, usageSources: ["provider"]))
    }

    @Test("a row per strategy: each turn's tokens, right-aligned, then their total; then the split by call")
    func table() {
        let table = sample.table()
        #expect(
            table.contains(
                """
                MEMORY        TURN 1  TURN 2  TURN 3  TOTAL
                buffer            15      26      37     78
                window (k=1)      15      26      27     68
                summary          115     128     141    384
                """), "\(table)")
        #expect(
            table.contains(
                """
                MEMORY        PROMPT  REPLY  SUMMARISING  TOTAL
                buffer            60     18            0     78
                window (k=1)      50     18            0     68
                summary           36     18          330    384
                """), "\(table)")
        #expect(table.hasPrefix("Turns:\n  1. Hi\n  2. Pink roses\n  3. Why did I come?\n"))
        #expect(!table.contains("estimates"))
    }

    @Test("totals are the sums of the turns, in the table and the JSON")
    func totals() {
        for strategy in sample.strategies {
            #expect(strategy.allTurns.total == strategy.turns.map(\.total).reduce(0, +))
        }
        let strategies = sample.json["strategies"]?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(strategies.map { $0["all_turns"]?.objectValue?["total_tokens"]?.intValue } == [78, 68, 384])
        #expect(strategies[1]["memory"] == "window" && strategies[1]["k"] == 1 && strategies[1]["label"] == "window (k=1)")
        #expect(strategies[2]["turns"]?.arrayValue?.map { $0.objectValue?["summarising_tokens"]?.intValue } == [100, 110, 120])
    }

    @Test("a note says when the counts are llmd's estimates")
    func usageNote() {
        var comparison = MemoryComparison(
            messages: ["x"], strategies: [.init(name: "buffer", turns: [Tokens(prompt: 1, completion: 1, usageSources: ["provider"])])])
        #expect(comparison.usageNote == nil)
        comparison.strategies[0].turns.append(Tokens(prompt: 1, completion: 1, usageSources: ["estimated"]))
        #expect(comparison.usageNote == "Token counts are llmd's estimates: the provider reported none.")
        #expect(comparison.table().hasSuffix("\nToken counts are llmd's estimates: the provider reported none.\n"))
    }

    @Test("a strategy with fewer turns leaves its cells empty")
    func unevenTurns() {
        let comparison = MemoryComparison(
            messages: ["a", "b"],
            strategies: [
                .init(name: "buffer", turns: [Tokens(prompt: 1, completion: 1), Tokens(prompt: 2, completion: 2)]),
                .init(name: "summary", turns: [Tokens(prompt: 3, completion: 3)]),
            ])
        #expect(comparison.table().contains("buffer        2       4      6\nsummary       6              6"))
    }
}

/// What a test needs of an SVG document: its elements, with their attributes and text.
final class SVGElements: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
        /// The `class` of the nearest enclosing `g`.
        var group: String?
        var text = ""
    }

    var elements: [Element] = []
    private var open: [Int] = []
    private var groups: [String?] = []

    /// Parses `svg`; nil when it is not well-formed XML.
    static func parse(_ svg: String) -> [Element]? {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = SVGElements()
        parser.delegate = collector
        return parser.parse() ? collector.elements : nil
    }

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String]
    ) {
        elements.append(Element(name: name, attributes: attributes, group: groups.last ?? nil))
        open.append(elements.count - 1)
        if name == "g" { groups.append(attributes["class"]) }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let current = open.last { elements[current].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
        if name == "g" { groups.removeLast() }
    }
}

@Suite("Memory comparison: SVG chart")
struct MemoryComparisonChartTests {
    /// The (x, y) pairs of a `points` attribute.
    func points(_ element: SVGElements.Element) -> [(x: Double, y: Double)] {
        (element.attributes["points"] ?? "").split(separator: " ").map { pair in
            let numbers = pair.split(separator: ",").compactMap { Double($0) }
            return (numbers[0], numbers[1])
        }
    }

    @Test("the chart is well-formed SVG 1.1 with a title, and one line of a marker per turn for each strategy")
    func structure() throws {
        let svg = sample.svgChart()
        #expect(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\""))
        #expect(!svg.contains("href"), "self-contained: no links to anything outside")
        let elements = try #require(SVGElements.parse(svg))
        #expect(elements.first { $0.name == "title" }?.text == "Tokens per turn by memory strategy")
        let lines = elements.filter { $0.name == "polyline" && $0.group == "strategy" }
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { points($0).count == 3 })
        #expect(Set(lines.compactMap { $0.attributes["stroke"] }).count == 3, "each strategy has its own colour")
        #expect(elements.filter { $0.attributes["class"] == "marker" && $0.group == "strategy" }.count == 9)
        let legend = elements.filter { $0.name == "text" && $0.group == "legend" }.map(\.text)
        #expect(legend == ["buffer: 78 tokens", "window (k=1): 68 tokens", "summary: 384 tokens"])
        let turnLabels = elements.filter { $0.name == "text" && $0.group == "x-axis" }.map(\.text)
        #expect(turnLabels == ["1", "2", "3", "Turn"])
    }

    @Test("the y axis runs from 0 to a round number above the largest turn, in ticks of 1, 2 or 5 times a power of ten")
    func ticks() throws {
        // The largest turn is summary's 141: ticks of 50 up to 150.
        let elements = try #require(SVGElements.parse(sample.svgChart()))
        let labels = elements.filter { $0.name == "text" && $0.group == "y-axis" }.map(\.text)
        #expect(labels == ["0", "50", "100", "150", "Tokens"])
    }

    @Test("more tokens sit higher: y falls as the turn's tokens rise, across all strategies")
    func monotone() throws {
        let elements = try #require(SVGElements.parse(sample.svgChart()))
        let lines = elements.filter { $0.name == "polyline" && $0.group == "strategy" }
        let plotted = zip(sample.strategies, lines).flatMap { strategy, line in
            zip(strategy.turns.map(\.total), points(line).map(\.y))
        }
        for a in plotted {
            for b in plotted where a.0 < b.0 { #expect(a.1 > b.1, "\(a.0) tokens at y \(a.1), \(b.0) at \(b.1)") }
        }
        let xs = points(lines[0]).map(\.x)
        #expect(xs == xs.sorted() && Set(xs).count == xs.count, "turns go left to right")
    }

    @Test("labels are escaped and come back as written")
    func escaping() throws {
        let label = "a<b> & \"c\" 'd'"
        let comparison = MemoryComparison(
            messages: ["x"], strategies: [.init(name: label, turns: [Tokens(prompt: 1, completion: 2)])])
        let svg = comparison.svgChart(title: "Costs & <savings>")
        #expect(svg.contains("a&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;"))
        let elements = try #require(SVGElements.parse(svg))
        #expect(elements.first { $0.name == "title" }?.text == "Costs & <savings>")
        #expect(elements.contains { $0.group == "legend" && $0.text == "\(label): 3 tokens" })
    }

    @Test("no strategies, or only zeros, still make a valid chart without dividing by zero")
    func degenerate() throws {
        let zeros = MemoryComparison(
            messages: ["a", "b"],
            strategies: [.init(name: "buffer", turns: [Tokens(prompt: 0, completion: 0), Tokens(prompt: 0, completion: 0)])])
        for comparison in [MemoryComparison(messages: []), zeros, MemoryComparison(messages: ["a"], strategies: [.init(name: "buffer")])] {
            let svg = comparison.svgChart()
            #expect(!svg.lowercased().contains("nan") && !svg.lowercased().contains("inf"), "\(svg)")
            #expect(SVGElements.parse(svg) != nil)
            #expect(!comparison.table().isEmpty)
        }
        let elements = try #require(SVGElements.parse(zeros.svgChart()))
        let line = try #require(elements.first { $0.name == "polyline" && $0.group == "strategy" })
        let axis = try #require(elements.first { $0.attributes["class"] == "axes" })
        #expect(Set(points(line).map(\.y)) == [points(axis)[1].y], "zero sits on the x axis")
    }
}
