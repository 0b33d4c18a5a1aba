import Foundation
import QuantServe
import Synchronization

/// One model the server answers for under a name: loading, ready with its engine, or failed to load.
public final class ServedModel: Sendable {
    public enum State: Sendable {
        case loading
        case ready(Engine)
        case failed(String)
    }

    public let name: String
    /// Where it was loaded from (`root` in `/v1/models`).
    public let path: String
    public let created: Int
    private let state = Mutex(State.loading)
    /// The model's chat template, parsed once when it is ready (nil with the reason when it has none usable).
    private let template = Mutex<Result<ChatTemplate, ChatTemplateError>?>(nil)
    /// The vocabulary's bytes as a trie, for constrained output; built on first use.
    private let trie = Mutex<VocabularyTrie?>(nil)

    public init(name: String, path: String, created: Int = Int(Date().timeIntervalSince1970)) {
        self.name = name
        self.path = path
        self.created = created
    }

    public var current: State { state.withLock { $0 } }

    public var engine: Engine? {
        if case .ready(let e) = current { return e }
        return nil
    }

    public func ready(_ engine: Engine) {
        let parsed = Result { () throws(ChatTemplateError) -> ChatTemplate in try engine.tokenizer.makeChatTemplate() }
        template.withLock { $0 = parsed }
        state.withLock { $0 = .ready(engine) }
    }

    public func failed(_ message: String) { state.withLock { $0 = .failed(message) } }

    /// The vocabulary trie of `tokenizer` (this model's), built once.
    func vocabularyTrie(_ tokenizer: any Tokenizer) -> VocabularyTrie {
        trie.withLock { t in
            if let t { return t }
            let built = VocabularyTrie(tokenizer: tokenizer)
            t = built
            return built
        }
    }

    func chatTemplate() throws(ChatTemplateError) -> ChatTemplate {
        guard let t = template.withLock({ $0 }) else { throw .missingTemplate }
        return try t.get()
    }
}

/// The names the server answers for, each mapped to its model. The first is the default for requests that name
/// none. A table, not one engine: a server may serve several models and levels.
public final class ModelTable: Sendable {
    private let models: Mutex<[ServedModel]>

    public init(_ models: [ServedModel] = []) { self.models = Mutex(models) }

    public func add(_ model: ServedModel) { models.withLock { $0.append(model) } }

    public var all: [ServedModel] { models.withLock { $0 } }

    /// The name that always means the default model (as load generators send when told no name), unless a model is
    /// served under it.
    public static let defaultAlias = "default"

    /// The model named `name` (nil or `default`: the default one). A model served at several levels as `NAME:LEVEL`
    /// also answers to `NAME`, meaning its first level.
    public func model(named name: String?) -> ServedModel? {
        models.withLock { list in
            guard let name else { return list.first }
            return list.first { $0.name == name } ?? list.first { $0.name.hasPrefix(name + ":") }
                ?? (name == Self.defaultAlias ? list.first : nil)
        }
    }
}

extension ServedModel {
    /// The served name a path gets by default: the file's or folder's name without its extension.
    public static func defaultName(forPath path: String) -> String {
        var url = URL(fileURLWithPath: path)
        if url.lastPathComponent.isEmpty { url.deleteLastPathComponent() }
        let isFolder = (try? url.resourceValues(forKeys: [.isDirectoryKey]))?.isDirectory ?? false
        return isFolder ? url.lastPathComponent : url.deletingPathExtension().lastPathComponent
    }
}
