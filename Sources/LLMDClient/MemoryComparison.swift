import LLMDProtocol

/// What one conversation cost, turn by turn, under each memory strategy: what
/// `llmctl compare-memory` measures, rendered as a terminal table, an SVG line chart or JSON.
///
/// Rendering is pure and Foundation-free, like the rest of the client library, so it is
/// tested without a daemon and llmctl keeps its fast start.
public struct MemoryComparison: Sendable, Equatable {
    /// The tokens of one turn, or of several added up.
    public struct Tokens: Sendable, Equatable {
        /// The reply call's input: the prompt the memory built, with the new message.
        public var prompt: Int
        /// The reply.
        public var completion: Int
        /// The memory's summarising calls after the reply, input and output together.
        public var summarising: Int
        /// Where the counts came from, as the calls' `usage.source`: `provider`, or
        /// `estimated` (counted by llmd).
        public var usageSources: Set<String>

        public init(prompt: Int, completion: Int, summarising: Int = 0, usageSources: Set<String> = []) {
            self.prompt = prompt
            self.completion = completion
            self.summarising = summarising
            self.usageSources = usageSources
        }

        /// The tokens of a `send` result: its `usage`, and the `summary_usage` of the
        /// memory's summarising calls.
        public init(turnResult result: SendMethod.Result) {
            let usage = result.reply.usage.tokens
            let summaries = result.summaryUsage.map(\.tokens)
            self.init(
                prompt: usage.promptTokens, completion: usage.completionTokens,
                summarising: summaries.reduce(0) { $0 + $1.totalTokens },
                usageSources: Set(([usage] + summaries).map(\.source.rawValue)))
        }

        /// Everything the turn cost: reply and summarising calls.
        public var total: Int { prompt + completion + summarising }

        static let zero = Tokens(prompt: 0, completion: 0)

        static func + (lhs: Tokens, rhs: Tokens) -> Tokens {
            Tokens(
                prompt: lhs.prompt + rhs.prompt, completion: lhs.completion + rhs.completion,
                summarising: lhs.summarising + rhs.summarising, usageSources: lhs.usageSources.union(rhs.usageSources))
        }
    }

    /// A strategy's limit, named as the session setting: `k` or `max_tokens`.
    public struct Parameter: Sendable, Equatable {
        public var name: String
        public var value: Int

        public init(name: String, value: Int) {
            self.name = name
            self.value = value
        }
    }

    /// One strategy's run of the conversation.
    public struct Strategy: Sendable, Equatable {
        /// As the `memory` setting spells it: `window`.
        public var name: String
        /// nil for the strategies without a limit, `buffer` and `summary`.
        public var parameter: Parameter?
        /// The tokens of each turn, in order.
        public var turns: [Tokens]

        public init(name: String, parameter: Parameter? = nil, turns: [Tokens] = []) {
            self.name = name
            self.parameter = parameter
            self.turns = turns
        }

        /// `window (k=1)`, as `llmctl sessions` describes a session's memory.
        public var label: String {
            parameter.map { "\(name) (\($0.name)=\($0.value))" } ?? name
        }

        /// All turns added up.
        public var allTurns: Tokens { turns.reduce(.zero, +) }
    }

    /// The user's messages, one a turn.
    public var messages: [String]
    public var strategies: [Strategy]

    public init(messages: [String], strategies: [Strategy] = []) {
        self.messages = messages
        self.strategies = strategies
    }

    /// The most turns any strategy ran: the columns of the table and the chart's x axis.
    public var turnCount: Int { strategies.map(\.turns.count).max() ?? 0 }

    /// Says when the counts are not the provider's, for under the table and the chart.
    public var usageNote: String? {
        let sources = strategies.reduce(into: Set<String>()) { $0.formUnion($1.allTurns.usageSources) }
        return sources.contains("estimated") ? "Token counts are llmd's estimates: the provider reported none." : nil
    }
}

// MARK: - Terminal table

extension MemoryComparison {
    /// The comparison for a terminal: the turns, the tokens each turn cost per strategy with
    /// their total, then how the totals split between prompts, replies and summarising calls.
    public func table() -> String {
        var text = "Turns:\n"
        for (index, message) in messages.enumerated() {
            // On one line each, so the numbers stay in a column.
            text += "  \(index + 1). \(String(message.map { $0.isNewline ? " " : $0 }))\n"
        }
        let turnHeaders = (0..<turnCount).map { "TURN \($0 + 1)" }
        var perTurn = [["MEMORY"] + turnHeaders + ["TOTAL"]]
        var split = [["MEMORY", "PROMPT", "REPLY", "SUMMARISING", "TOTAL"]]
        for strategy in strategies {
            let cells = (0..<turnCount).map { $0 < strategy.turns.count ? String(strategy.turns[$0].total) : "" }
            let all = strategy.allTurns
            perTurn.append([strategy.label] + cells + [String(all.total)])
            split.append([strategy.label] + [all.prompt, all.completion, all.summarising, all.total].map { String($0) })
        }
        text += "\nTokens per turn (reply and summarising calls):\n\n" + Self.columns(perTurn) + "\n"
        text += "\nAll turns, by call:\n\n" + Self.columns(split) + "\n"
        if let usageNote { text += "\n" + usageNote + "\n" }
        return text
    }

    /// The first column left-aligned, the numbers right-aligned, two spaces apart.
    private static func columns(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

// MARK: - SVG chart

extension MemoryComparison {
    /// A self-contained SVG 1.1 line chart of the tokens per turn: one line with markers
    /// per strategy, the turns along x, a legend with each strategy's total.
    ///
    /// Strategies that cost the same draw the same line; their dash patterns and marker
    /// shapes differ, so the ones underneath still show through.
    public func svgChart(title: String = "Tokens per turn by memory strategy") -> String {
        let layout = ChartLayout(comparison: self)
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(layout.width)" height="\(layout.height)" \
            viewBox="0 0 \(layout.width) \(layout.height)" font-family="sans-serif" font-size="12">
            <title>\(Self.escaped(title))</title>
            <rect x="0" y="0" width="\(layout.width)" height="\(layout.height)" fill="white"/>
            <text x="\(layout.width / 2)" y="28" font-size="16" font-weight="bold" text-anchor="middle">\(Self.escaped(title))</text>

            """
        svg += layout.axes()
        for (index, strategy) in strategies.enumerated() {
            svg += layout.series(strategy, style: SeriesStyle(index: index))
        }
        svg += layout.legend(strategies)
        if let usageNote {
            svg += """
                <text x="\(ChartLayout.plotLeft)" y="\(layout.height - 12)" font-size="11" fill="#555">\(Self.escaped(usageNote))</text>

                """
        }
        return svg + "</svg>\n"
    }

    /// Text safe inside an XML element or a quoted attribute.
    static func escaped(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            default: result.append(character)
            }
        }
        return result
    }

    /// A coordinate with at most one decimal: `12`, `12.5`.
    static func coordinate(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        let magnitude = abs(tenths)
        let whole = (tenths < 0 ? "-" : "") + String(magnitude / 10)
        return magnitude % 10 == 0 ? whole : whole + "." + String(magnitude % 10)
    }
}

/// How one strategy's line looks: colour, dash pattern and marker shape, from its position.
private struct SeriesStyle {
    enum Shape: CaseIterable { case circle, square, diamond, triangle, triangleDown }

    // Tableau's ten colours, told apart by most colour-blind readers.
    static let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ]
    static let dashes = [nil, "8 4", "3 3", "10 3 2 3", "1 3"]

    var colour: String
    var dash: String?
    var shape: Shape

    init(index: Int) {
        colour = Self.colours[index % Self.colours.count]
        dash = Self.dashes[index % Self.dashes.count]
        shape = Shape.allCases[index % Shape.allCases.count]
    }

    /// The stroke of the strategy's line, and of its sample in the legend.
    var lineAttributes: String {
        "fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"" + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")
    }

    /// The marker centred on (x, y), with a tooltip. Markers are outlines, so those of
    /// strategies with the same count show through each other.
    func marker(x: Double, y: Double, tooltip: String) -> String {
        let c = MemoryComparison.coordinate
        func points(_ offsets: [(x: Double, y: Double)]) -> String {
            "points=\"" + offsets.map { "\(c(x + $0.x)),\(c(y + $0.y))" }.joined(separator: " ") + "\""
        }
        let (name, geometry): (String, String)
        switch shape {
        case .circle: (name, geometry) = ("circle", "cx=\"\(c(x))\" cy=\"\(c(y))\" r=\"4.5\"")
        case .square: (name, geometry) = ("polygon", points([(-4, -4), (4, -4), (4, 4), (-4, 4)]))
        case .diamond: (name, geometry) = ("polygon", points([(0, -6), (6, 0), (0, 6), (-6, 0)]))
        case .triangle: (name, geometry) = ("polygon", points([(0, -6), (6, 4), (-6, 4)]))
        case .triangleDown: (name, geometry) = ("polygon", points([(0, 6), (6, -4), (-6, -4)]))
        }
        return "<\(name) class=\"marker\" \(geometry) fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\">"
            + "<title>\(MemoryComparison.escaped(tooltip))</title></\(name)>"
    }
}

/// Where everything goes: the plot area, the axes' scales, the legend's column.
private struct ChartLayout {
    static let plotTop = 56
    static let plotHeight = 300
    static let characterWidth = 7
    static let plotLeft = 72

    let plotWidth: Int
    let legendLeft: Int
    let width: Int
    let height: Int
    let turnCount: Int
    /// The y axis's tick spacing and its top, a multiple of it at or above the largest value.
    let tickStep: Int
    let yTop: Int

    init(comparison: MemoryComparison) {
        turnCount = comparison.turnCount
        plotWidth = max(320, 120 * turnCount)
        legendLeft = Self.plotLeft + plotWidth + 32
        let longestLegend = comparison.strategies.map { Self.legendText($0).count }.max() ?? 0
        width = legendLeft + 32 + longestLegend * Self.characterWidth + 16
        height = Self.plotTop + Self.plotHeight + 64 + (comparison.usageNote == nil ? 0 : 20)
        let largest = comparison.strategies.flatMap(\.turns).map(\.total).max() ?? 0
        tickStep = Self.tickStep(covering: largest)
        // Never 0, so an all-zero comparison still has a scale to divide by.
        yTop = max(tickStep, (largest + tickStep - 1) / tickStep * tickStep)
    }

    var plotBottom: Int { Self.plotTop + Self.plotHeight }

    /// 1, 2 or 5 times a power of ten, so that at most five steps reach `largest`.
    static func tickStep(covering largest: Int) -> Int {
        var magnitude = 1
        while true {
            for multiple in [1, 2, 5] where largest <= multiple * magnitude * 5 { return multiple * magnitude }
            magnitude *= 10
        }
    }

    static func legendText(_ strategy: MemoryComparison.Strategy) -> String {
        "\(strategy.label): \(strategy.allTurns.total) tokens"
    }

    /// Turn n (from 1) at the middle of its share of the width.
    func x(turn: Int) -> Double {
        Double(Self.plotLeft) + (Double(turn) - 0.5) * Double(plotWidth) / Double(turnCount)
    }

    func y(tokens: Int) -> Double {
        Double(plotBottom) - Double(tokens) / Double(yTop) * Double(Self.plotHeight)
    }

    /// Grid lines, axes, ticks with their labels, and the axes' titles.
    func axes() -> String {
        let c = MemoryComparison.coordinate
        let right = Self.plotLeft + plotWidth
        var svg = "<g class=\"y-axis\" text-anchor=\"end\">\n"
        for value in stride(from: 0, through: yTop, by: tickStep) {
            let y = c(y(tokens: value))
            svg += "<line x1=\"\(Self.plotLeft)\" y1=\"\(y)\" x2=\"\(right)\" y2=\"\(y)\" stroke=\"#e0e0e0\"/>"
            svg += "<line x1=\"\(Self.plotLeft - 5)\" y1=\"\(y)\" x2=\"\(Self.plotLeft)\" y2=\"\(y)\" stroke=\"black\"/>"
            svg += "<text x=\"\(Self.plotLeft - 8)\" y=\"\(y)\" dy=\"4\">\(value)</text>\n"
        }
        let middle = Self.plotTop + Self.plotHeight / 2
        svg += "<text x=\"18\" y=\"\(middle)\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(middle))\">Tokens</text>\n"
        svg += "</g>\n<g class=\"x-axis\" text-anchor=\"middle\">\n"
        for turn in stride(from: 1, through: turnCount, by: 1) {
            let x = c(x(turn: turn))
            svg += "<line x1=\"\(x)\" y1=\"\(plotBottom)\" x2=\"\(x)\" y2=\"\(plotBottom + 5)\" stroke=\"black\"/>"
            svg += "<text x=\"\(x)\" y=\"\(plotBottom + 20)\">\(turn)</text>\n"
        }
        svg += "<text x=\"\(Self.plotLeft + plotWidth / 2)\" y=\"\(plotBottom + 42)\">Turn</text>\n</g>\n"
        svg += "<polyline class=\"axes\" points=\"\(Self.plotLeft),\(Self.plotTop) \(Self.plotLeft),\(plotBottom) \(right),\(plotBottom)\" "
        svg += "fill=\"none\" stroke=\"black\"/>\n"
        return svg
    }

    /// One strategy's line and markers.
    func series(_ strategy: MemoryComparison.Strategy, style: SeriesStyle) -> String {
        let c = MemoryComparison.coordinate
        let points = strategy.turns.enumerated().map { (x: x(turn: $0.offset + 1), y: y(tokens: $0.element.total)) }
        var svg = "<g class=\"strategy\">\n"
        if !points.isEmpty {
            svg += "<polyline points=\"\(points.map { "\(c($0.x)),\(c($0.y))" }.joined(separator: " "))\" \(style.lineAttributes)/>\n"
        }
        for (index, point) in points.enumerated() {
            let tooltip = "\(strategy.label), turn \(index + 1): \(strategy.turns[index].total) tokens"
            svg += style.marker(x: point.x, y: point.y, tooltip: tooltip) + "\n"
        }
        return svg + "</g>\n"
    }

    /// A sample of each line with the strategy's label and total.
    func legend(_ strategies: [MemoryComparison.Strategy]) -> String {
        var svg = "<g class=\"legend\">\n"
        for (index, strategy) in strategies.enumerated() {
            let style = SeriesStyle(index: index)
            let y = Self.plotTop + 8 + index * 22
            svg += "<line x1=\"\(legendLeft)\" y1=\"\(y)\" x2=\"\(legendLeft + 24)\" y2=\"\(y)\" \(style.lineAttributes)/>"
            svg += style.marker(x: Double(legendLeft + 12), y: Double(y), tooltip: strategy.label)
            svg += "<text x=\"\(legendLeft + 32)\" y=\"\(y)\" dy=\"4\">\(MemoryComparison.escaped(Self.legendText(strategy)))</text>\n"
        }
        return svg + "</g>\n"
    }
}

// MARK: - JSON

extension MemoryComparison {
    /// The comparison for scripts: the messages, and per strategy the tokens of each turn
    /// and of all turns.
    public var json: JSONObject {
        func tokens(_ tokens: Tokens) -> JSONObject {
            [
                "prompt_tokens": JSONValue(tokens.prompt), "completion_tokens": JSONValue(tokens.completion),
                "summarising_tokens": JSONValue(tokens.summarising), "total_tokens": JSONValue(tokens.total),
                "usage_sources": .array(tokens.usageSources.sorted().map(JSONValue.string)),
            ]
        }
        let strategies = strategies.map { strategy -> JSONValue in
            var object: JSONObject = ["memory": .string(strategy.name)]
            if let parameter = strategy.parameter { object[parameter.name] = JSONValue(parameter.value) }
            object["label"] = .string(strategy.label)
            object["turns"] = .array(strategy.turns.map { .object(tokens($0)) })
            object["all_turns"] = .object(tokens(strategy.allTurns))
            return .object(object)
        }
        return ["messages": .array(messages.map(JSONValue.string)), "strategies": .array(strategies)]
    }
}
