import LLMDClient
import LLMDCommandLine
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

let onCommand = Command(
    "on", abstract: "Run a command for each event of the given types: a callback handler from the shell.",
    discussion: """
        The command gets the event on standard input, one line of JSON as 'llmctl events -o
        json' prints it, and LLMD_EVENT_TYPE, LLMD_EVENT_SEQ, LLMD_EVENT_RUN_ID, and when the
        event has them LLMD_EVENT_PARENT_RUN_ID and LLMD_EVENT_SESSION, in its environment.
        Events are handled one at a time, in order: live ones, and with --since the past ones
        first. With --block each run waits for the command to exit, up to the daemon's
        AckTimeoutSec=, as LangChain waits for an async handler. A command that fails is
        reported on standard error and run again for the next event. llmctl survives a daemon
        restart: it reconnects and resumes after the last event handled. It runs until it is
        interrupted. Put -- before the command.
        """,
    options: [
        clientOptions[0],
        .value("-s", "--session", valueName: "name", help: "Only this session's events (repeatable).", liveValues: "sessions"),
        .value(
            "--since", valueName: "seq|time",
            help: "First run the command for the past events after this seq or from this time (as for events --since)."),
        .flag("--block", help: "Make each run wait until the command has exited."),
    ],
    positionals: [
        Positional("type", help: "An event type, such as llm_end; several may be given.", repeating: true, liveValues: "event-types"),
        Positional("command", help: "The command to run, after --, and its arguments.", repeating: true),
    ])

extension LLMCtl {
    static func on(_ parsed: ParsedCommandLine) throws(ClientError) {
        let split = parsed.positionalsBeforeDoubleDash ?? parsed.positionals.count
        let names = Array(parsed.positionals[..<split])
        let block = parsed.flag("--block")
        let known = EventType.allCases.map(\.rawValue)
        for name in names {
            guard let type = EventType(rawValue: name) else {
                usageFailure(
                    "'\(name)' is not an event type\(Command.suggestion(for: name, among: known)); types: \(known.joined(separator: ", "))")
            }
            guard !block || type.canBlock else {
                usageFailure("--block cannot hold runs for \(name): tokens never wait, and lagged and ack_timeout are about a subscriber, not a run")
            }
        }
        var params = SubscribeMethod.Params(types: names, blocking: block ? names : nil)
        let sessions = parsed.allValues("--session")
        if !sessions.isEmpty { params.sessions = sessions }
        if let since = sinceCursor(parsed) { params.start(after: since) }
        let hook = externalCommand(Array(parsed.positionals[split...]))
        // A hook that exits without reading all of its input must not end llmctl.
        signal(SIGPIPE, SIG_IGN)
        var subscription: (client: LLMDClient, number: Int64)?
        let socket = parsed.value("--socket")
        try subscribe(params, socket: socket, follow: true, onSubscribed: { subscription = ($0, $1.subscription) }) {
            message throws(ClientError) in
            guard case .event(let event) = message, let subscription else { return true }
            if let type = event.type, type.isAddressed, !names.contains(event.name) {
                reportAddressed(event)
                return true
            }
            runHook(hook, for: event)
            if block { try subscription.client.acknowledge(AckMethod.Params(subscription: subscription.number, seq: event.seq)) }
            return true
        }
    }

    /// Runs `hook` for `event` and waits for it; a failure is reported, and the next
    /// event runs the hook again.
    static func runHook(_ hook: ExternalCommand, for event: CallbackEvent) {
        let variables: [String: String?] = [
            "LLMD_EVENT_TYPE": event.name, "LLMD_EVENT_SEQ": String(event.seq), "LLMD_EVENT_RUN_ID": event.runID,
            "LLMD_EVENT_PARENT_RUN_ID": event.parentRunID, "LLMD_EVENT_SESSION": event.session,
        ]
        let which = "\(event.name) #\(event.seq)"
        do {
            switch try hook.run(setting: variables, input: event.jsonLine) {
            case .exited(0): break
            case .exited(let status): printError("llmctl: hook exited \(status) for \(which)")
            case .signalled(let signal): printError("llmctl: hook killed by signal \(signal) for \(which)")
            }
        } catch {
            printError("llmctl: \(error) for \(which)")
        }
    }

    /// What the daemon says about this subscriber rather than a run, in a line.
    static func reportAddressed(_ event: CallbackEvent) {
        let number = { (key: String) in event.data[key]?.intValue ?? 0 }
        switch event.type {
        case .ackTimeout?:
            printError(
                "llmctl: the run went on without waiting for the hook on #\(number("seq")): "
                    + "it took longer than the daemon's ack timeout (\(number("timeout_ms")) ms)")
        case .lagged?:
            printError("llmctl: fell \(number("missed")) events behind; the daemon sends them again from seq \(number("resume_from"))")
        default:
            break
        }
    }
}
