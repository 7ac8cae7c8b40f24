// MARK: - provider.list, model.list

/// `provider.list`: the providers calls may name, as the daemon's configuration has them
/// now. Whether each has an API key, never the key.
public enum ProviderListMethod: TypedMethod {
    public static let method = ProtocolMethod.providerList
    public typealias Params = NoParams

    public struct Result: JSONObjectConvertible, Equatable {
        public var providers: [Provider]
        /// The provider of calls that name none.
        public var defaultProvider: String

        public init(providers: [Provider], defaultProvider: String) {
            (self.providers, self.defaultProvider) = (providers, defaultProvider)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let providers = try json.objects("providers", as: Provider.self) else {
                throw .invalidParam("providers", expected: "an array of objects", got: nil)
            }
            self.providers = providers
            defaultProvider = try json.requiredString("default")
        }

        public var json: JSONObject { ["providers": .objects(providers), "default": .string(defaultProvider)] }
    }

    public struct Provider: JSONObjectConvertible, Equatable {
        public var name: String
        /// `openai` (an OpenAI-compatible server) or `fake` (offline).
        public var type: String
        /// Nil for an offline provider, which calls no server.
        public var baseURL: String?
        public var defaultModel: String?
        /// Whether calls carry an API key.
        public var hasAPIKey: Bool
        public var isDefault: Bool

        public init(name: String, type: String, baseURL: String?, defaultModel: String?, hasAPIKey: Bool, isDefault: Bool) {
            (self.name, self.type, self.baseURL, self.defaultModel) = (name, type, baseURL, defaultModel)
            (self.hasAPIKey, self.isDefault) = (hasAPIKey, isDefault)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            name = try json.requiredString("name")
            type = try json.requiredString("type")
            baseURL = try json.string("base_url")
            defaultModel = try json.string("default_model")
            hasAPIKey = try json.requiredBool("api_key")
            isDefault = try json.requiredBool("default")
        }

        public var json: JSONObject {
            [
                "name": .string(name), "type": .string(type), "base_url": baseURL.map(JSONValue.string) ?? .null,
                "default_model": defaultModel.map(JSONValue.string) ?? .null, "api_key": .bool(hasAPIKey),
                "default": .bool(isDefault),
            ]
        }
    }
}

/// `model.list`: the models each provider offers, what the daemon knows of them and of
/// the models its configuration names, and the aliases.
public enum ModelListMethod: TypedMethod {
    public static let method = ProtocolMethod.modelList

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case provider, upstream }
        /// Only this provider; nil for all.
        public var provider: String?
        /// False asks no server: each provider's default model only. Default true.
        public var upstream: Bool?

        public init(provider: String? = nil, upstream: Bool? = nil) {
            (self.provider, self.upstream) = (provider, upstream)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            provider = try json.string(Key.provider)
            upstream = try json.bool(Key.upstream)
        }

        public var json: JSONObject {
            JSONObject([Key.provider: provider.map(JSONValue.string), Key.upstream: upstream.map(JSONValue.bool)])
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var providers: [ProviderModels]
        /// Each model named in `providers` or `aliases`, and, when no provider was asked
        /// for, each the daemon knows from its configuration or built-in tables; once, sorted.
        public var models: [Model]
        public var aliases: [Alias]

        public init(providers: [ProviderModels], models: [Model], aliases: [Alias]) {
            (self.providers, self.models, self.aliases) = (providers, models, aliases)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let providers = try json.objects("providers", as: ProviderModels.self),
                let models = try json.objects("models", as: Model.self),
                let aliases = try json.objects("aliases", as: Alias.self)
            else { throw .invalidParam("providers", expected: "arrays of objects: providers, models, aliases", got: nil) }
            (self.providers, self.models, self.aliases) = (providers, models, aliases)
        }

        public var json: JSONObject {
            ["providers": .objects(providers), "models": .objects(models), "aliases": .objects(aliases)]
        }
    }

    /// One provider's models: those its server lists, or why it listed none.
    public struct ProviderModels: JSONObjectConvertible, Equatable {
        public var provider: String
        public var defaultModel: String?
        /// What the server's `GET /models` lists (an offline provider: its default model);
        /// nil when the server was not asked, or failed.
        public var models: [String]?
        /// Why the server listed nothing.
        public var error: ProtocolError?

        public init(provider: String, defaultModel: String?, models: [String]?, error: ProtocolError? = nil) {
            (self.provider, self.defaultModel, self.models, self.error) = (provider, defaultModel, models, error)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            provider = try json.requiredString("provider")
            defaultModel = try json.string("default_model")
            models = try json.strings("models")
            error = json["error"].flatMap(ProtocolError.init(json:))
        }

        public var json: JSONObject {
            var object: JSONObject = [
                "provider": .string(provider), "default_model": defaultModel.map(JSONValue.string) ?? .null,
                "models": models.map { .array($0.map(JSONValue.string)) } ?? .null,
            ]
            object["error"] = error?.json
            return object
        }
    }

    /// What the daemon knows of a model: null where it knows nothing.
    public struct Model: JSONObjectConvertible, Equatable {
        public var model: String
        /// Tokens, prompt and reply together.
        public var contextWindow: Int64?
        public var price: Price?
        /// Whether a `[Model]` section of llmd.conf names it.
        public var configured: Bool

        public init(model: String, contextWindow: Int64?, price: Price?, configured: Bool) {
            (self.model, self.contextWindow, self.price, self.configured) = (model, contextWindow, price, configured)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            model = try json.requiredString("model")
            contextWindow = try json.int("context_window")
            price = try json.object("price").map { object throws(ProtocolError) in try Price(json: object) }
            configured = try json.requiredBool("configured")
        }

        public var json: JSONObject {
            [
                "model": .string(model), "context_window": contextWindow.map(JSONValue.int) ?? .null,
                "price": price.map { .object($0.json) } ?? .null, "configured": .bool(configured),
            ]
        }
    }

    /// US dollars per million tokens.
    public struct Price: JSONObjectConvertible, Equatable {
        public var input: Double
        /// Nil: cached tokens cost `input`.
        public var cachedInput: Double?
        public var output: Double

        public init(input: Double, cachedInput: Double?, output: Double) {
            (self.input, self.cachedInput, self.output) = (input, cachedInput, output)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let input = try json.double("input"), let output = try json.double("output") else {
                throw .invalidParam("price", expected: "input and output prices", got: .object(json))
            }
            (self.input, self.output) = (input, output)
            cachedInput = try json.double("cached_input")
        }

        public var json: JSONObject {
            ["input": .double(input), "cached_input": cachedInput.map(JSONValue.double) ?? .null, "output": .double(output)]
        }
    }

    /// An `[Alias]` of llmd.conf.
    public struct Alias: JSONObjectConvertible, Equatable {
        public var alias: String
        public var model: String
        /// Nil: the provider the call names, else the default.
        public var provider: String?

        public init(alias: String, model: String, provider: String?) {
            (self.alias, self.model, self.provider) = (alias, model, provider)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            alias = try json.requiredString("alias")
            model = try json.requiredString("model")
            provider = try json.string("provider")
        }

        public var json: JSONObject {
            ["alias": .string(alias), "model": .string(model), "provider": provider.map(JSONValue.string) ?? .null]
        }
    }
}
