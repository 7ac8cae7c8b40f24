import LLMDProtocol
import Logging
import Synchronization

/// Where a run's events go besides its own handlers: in the daemon, the event bus, which
/// numbers, journals and fans them out to subscribers.
public protocol EventSink: Sendable {
    /// Gives `event` its `seq` and `time` and delivers it.
    ///
    /// Consuming: a producer hands its event over, so the sink numbers it in place instead
    /// of copying it to do so.
    func publish(_ event: consuming CallbackEvent) -> Publication

    /// Publishes a run's tokens read together, in order, as its `llm_new_token` events: as
    /// ``publish(_:)`` each, but at once, so the sink can deliver them together. Tokens
    /// never wait for acknowledgements.
    ///
    /// - Parameters:
    ///   - run: the run's token event without its token: the fields every one of them has.
    ///   - makingEvents: whether the caller delivers the events to handlers; when not, the
    ///     sink may publish the tokens without making an event of each.
    /// - Returns: the events, numbered; possibly none when not `makingEvents`.
    func publishTokens(_ tokens: [String], of run: CallbackEvent, makingEvents: Bool) -> [CallbackEvent]
}

extension EventSink {
    public func publishTokens(_ tokens: [String], of run: CallbackEvent, makingEvents: Bool) -> [CallbackEvent] {
        tokens.map { token in
            var event = run
            event.data = ["token": .string(token)]
            return publish(event).event
        }
    }
}

/// An event as published, and what blocking subscribers owe for it.
public struct Publication: Sendable {
    public var event: CallbackEvent
    /// Returns once every blocking subscriber acknowledged the event or timed out; nil
    /// when none was asked to.
    public var acknowledgements: (@Sendable () async -> Void)?

    public init(event: CallbackEvent, acknowledgements: (@Sendable () async -> Void)? = nil) {
        self.event = event
        self.acknowledgements = acknowledgements
    }
}

/// A sink for embedding the callback model without a daemon: numbers events in order.
public final class LocalEventSink: EventSink {
    private let nextSeq = Atomic<UInt64>(1)

    public init() {}

    public func publish(_ event: consuming CallbackEvent) -> Publication {
        event.seq = nextSeq.wrappingAdd(1, ordering: .relaxed).oldValue
        event.time = Timestamp.nowMicroseconds()
        return Publication(event: event)
    }
}

/// A handler that asked to raise failed: the run fails with this.
public struct CallbackError: Error, Sendable, CustomStringConvertible {
    public var event: String
    public var message: String

    public var description: String { "callback handler failed on \(event): \(message)" }
}

/// A handler attached to a run, in either form.
public enum Callback: Sendable {
    case sync(any CallbackHandler)
    case async(any AsyncCallbackHandler)
}

/// Dispatches one run's events, as LangChain's `CallbackManager`: to the run's own
/// handlers, to the inheritable handlers of the run and its parents, and to the sink.
///
/// A child run (the LLM call inside a turn, a summarising call made by memory) gets a
/// manager from ``child(runID:tags:metadata:handlers:)``: its events name the parent's
/// run as `parent_run_id` and reach every inheritable handler up the tree.
public final class CallbackManager: Sendable {
    public let runID: String
    public let parentRunID: String?
    public let session: String?
    public let tags: [String]
    public let metadata: JSONObject

    private let local: [AttachedHandler]
    private let inheritable: [AttachedHandler]
    private let sink: any EventSink
    private let logger: Logger
    /// The first error a raising handler threw on the token path, which cannot throw.
    private let raised: Mutex<CallbackError?>
    /// This run's `llm_new_token` event without its token; its ``CallbackEvent/encodedContext``
    /// is what every event of the run carries besides its type and data, encoded once: a
    /// run may stream thousands of tokens.
    private let tokenEvent: CallbackEvent

    /// A root run, or a run whose parent is not managed here: an external program's run,
    /// reported with `run.event`.
    ///
    /// - Parameters:
    ///   - parentRunID: the parent run's id, for a run whose parent is not managed here.
    ///   - handlers: this run's own handlers.
    ///   - inheritableHandlers: handlers of this run and every child run.
    public convenience init(
        runID: String = RunID.make(), parentRunID: String? = nil, session: String? = nil, tags: [String] = [],
        metadata: JSONObject = [:], handlers: [Callback] = [], inheritableHandlers: [Callback] = [], sink: any EventSink,
        logger: Logger
    ) {
        self.init(
            runID: runID, parentRunID: parentRunID, session: session, tags: tags, metadata: metadata,
            local: handlers.map(AttachedHandler.init), inheritable: inheritableHandlers.map(AttachedHandler.init),
            sink: sink, logger: logger)
    }

    private init(
        runID: String, parentRunID: String?, session: String?, tags: [String], metadata: JSONObject,
        local: [AttachedHandler], inheritable: [AttachedHandler], sink: any EventSink, logger: Logger
    ) {
        self.runID = runID
        self.parentRunID = parentRunID
        self.session = session
        self.tags = tags
        self.metadata = metadata
        self.local = local
        self.inheritable = inheritable
        self.sink = sink
        self.logger = logger
        self.raised = Mutex(nil)
        var tokenEvent = CallbackEvent(
            type: .llmNewToken, session: session, runID: runID, parentRunID: parentRunID, tags: tags, metadata: metadata,
            data: [:], encodedContext: nil)
        tokenEvent.encodedContext = tokenEvent.encodeContext()
        self.tokenEvent = tokenEvent
    }

    /// A manager for a child run: the parent's tags and metadata plus `tags` and `metadata`,
    /// the parent's inheritable handlers plus `handlers` of its own.
    public func child(
        runID: String = RunID.make(), tags: [String] = [], metadata: JSONObject = [:], handlers: [Callback] = []
    ) -> CallbackManager {
        var mergedMetadata = self.metadata
        for member in metadata { mergedMetadata[member.key] = member.value }
        return CallbackManager(
            runID: runID, parentRunID: self.runID, session: session, tags: self.tags + tags.filter { !self.tags.contains($0) },
            metadata: mergedMetadata, local: handlers.map(AttachedHandler.init), inheritable: inheritable, sink: sink,
            logger: logger)
    }

    func event(_ type: EventType, _ data: JSONObject) -> CallbackEvent {
        CallbackEvent(
            type: type, session: session, runID: runID, parentRunID: parentRunID, tags: tags, metadata: metadata, data: data,
            encodedContext: tokenEvent.encodedContext)
    }

    /// Emits a lifecycle event: awaits the asynchronous handlers and blocking subscribers.
    ///
    /// - Throws: ``CallbackError`` when a raising handler failed, now or on a token before.
    @discardableResult
    public func emit(_ type: EventType, _ data: JSONObject) async throws(CallbackError) -> CallbackEvent {
        let publication = sink.publish(event(type, data))
        for handler in local + inheritable {
            if let error = await handler.deliver(publication.event, logger: logger) {
                throw error
            }
        }
        if let wait = publication.acknowledgements { await wait() }
        try checkRaised()
        return publication.event
    }

    /// Emits an event without waiting: for tokens, on the HTTP engine's thread.
    /// Asynchronous handlers get it in order after what came before; a raising handler's
    /// error surfaces at the next ``emit(_:_:)`` or ``checkRaised()``.
    public func emitNow(_ type: EventType, _ data: JSONObject) {
        deliverWithoutWaiting(sink.publish(event(type, data)).event)
    }

    /// Emits a run's tokens read together (`llm_new_token` each) without waiting: as
    /// ``emitNow(_:_:)`` each, published at once.
    public func emitTokens(_ tokens: [String]) {
        let handled = !local.isEmpty || !inheritable.isEmpty
        for event in sink.publishTokens(tokens, of: tokenEvent, makingEvents: handled) {
            deliverWithoutWaiting(event)
        }
    }

    private func deliverWithoutWaiting(_ event: CallbackEvent) {
        // Two loops, not `local + inheritable`: that would build an array per token.
        for handler in local { deliverWithoutWaiting(event, to: handler) }
        for handler in inheritable { deliverWithoutWaiting(event, to: handler) }
    }

    private func deliverWithoutWaiting(_ event: CallbackEvent, to handler: AttachedHandler) {
        guard let error = handler.deliverWithoutWaiting(event, logger: logger) else { return }
        raised.withLock { raised in raised = raised ?? error }
    }

    /// - Throws: the first error a raising handler threw on the token path.
    public func checkRaised() throws(CallbackError) {
        if let error = raised.withLock({ $0 }) { throw error }
    }
}

/// A handler as attached: asynchronous ones get a queue so their events stay in order.
private enum AttachedHandler: Sendable {
    case sync(any CallbackHandler)
    case async(AsyncHandlerQueue)

    init(_ callback: Callback) {
        switch callback {
        case .sync(let handler): self = .sync(handler)
        case .async(let handler): self = .async(AsyncHandlerQueue(handler))
        }
    }

    /// Delivers `event`; returns the error when a raising handler failed.
    func deliver(_ event: CallbackEvent, logger: Logger) async -> CallbackError? {
        switch self {
        case .sync:
            return deliverWithoutWaiting(event, logger: logger)
        case .async(let queue):
            return await queue.run(event, logger: logger)
        }
    }

    func deliverWithoutWaiting(_ event: CallbackEvent, logger: Logger) -> CallbackError? {
        switch self {
        case .sync(let handler):
            do {
                try handler.handle(event)
                return nil
            } catch {
                return report(error, of: event, raises: handler.raisesErrors, logger: logger)
            }
        case .async(let queue):
            queue.enqueue(event, logger: logger)
            return queue.takeRaised()
        }
    }
}

/// Runs one asynchronous handler's events one after another, in the order emitted.
private final class AsyncHandlerQueue: Sendable {
    private struct Item: Sendable {
        var event: CallbackEvent
        var logger: Logger
        var done: CheckedContinuation<CallbackError?, Never>?
    }

    private let continuation: AsyncStream<Item>.Continuation
    private let raised = Mutex<CallbackError?>(nil)

    init(_ handler: any AsyncCallbackHandler) {
        let (stream, continuation) = AsyncStream<Item>.makeStream()
        self.continuation = continuation
        Task { [weak self] in
            for await item in stream {
                var failure: CallbackError?
                do {
                    try await handler.handle(item.event)
                } catch {
                    failure = report(error, of: item.event, raises: handler.raisesErrors, logger: item.logger)
                }
                if let done = item.done {
                    done.resume(returning: failure)
                } else if let failure {
                    self?.raised.withLock { $0 = $0 ?? failure }
                }
            }
        }
    }

    deinit {
        continuation.finish()
    }

    func run(_ event: CallbackEvent, logger: Logger) async -> CallbackError? {
        await withCheckedContinuation { done in
            continuation.yield(Item(event: event, logger: logger, done: done))
        }
    }

    func enqueue(_ event: CallbackEvent, logger: Logger) {
        continuation.yield(Item(event: event, logger: logger, done: nil))
    }

    func takeRaised() -> CallbackError? {
        raised.withLock { raised in
            defer { raised = nil }
            return raised
        }
    }
}

/// Logs a handler's failure; returns it as the run's error when the handler raises.
private func report(_ error: any Error, of event: CallbackEvent, raises: Bool, logger: Logger) -> CallbackError? {
    let failure = CallbackError(event: event.name, message: "\(error)")
    guard raises else {
        logger.warning("callback handler failed", metadata: ["event": "\(event.name)", "error": "\(error)"])
        return nil
    }
    return failure
}
