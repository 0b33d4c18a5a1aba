import CKernels

/// The element type of the KV cache: fp16, or int8 with one f32 scale per 32 values of a token's keys (and values),
/// half the memory and so twice the sequences in the same pool.
public enum KVCacheType: String, Sendable, CaseIterable {
    case fp16, int8
}

/// The keys and values of every sequence the engine serves, in fixed-size blocks:
/// per layer, `keys` and `values` are `[blockCount][blockSize][kvDim]` (fp16, or int8 codes with their scales
/// `[blockCount][blockSize][kvDim / group]` beside them). Which block holds what is the `BlockManager`'s business;
/// this type is only the memory.
public final class PagedKVCache {
    public static let defaultBlockSize = 16

    /// Blocks that hold `tokens` tokens.
    public static func blocks(for tokens: Int, blockSize: Int = defaultBlockSize) -> Int {
        (tokens + blockSize - 1) / blockSize
    }

    public let blockSize: Int
    public let blockCount: Int
    public let type: KVCacheType
    let layerCount: Int
    let kvDim: Int
    /// int8: values per scale.
    let group: Int
    private let keys: AlignedBuffer
    private let values: AlignedBuffer
    private let keyScales: AlignedBuffer?
    private let valueScales: AlignedBuffer?

    public init(configuration c: ModelConfiguration, blockCount: Int, blockSize: Int = PagedKVCache.defaultBlockSize,
                type: KVCacheType = .fp16) {
        precondition(blockCount > 0 && blockSize > 0, "a KV cache needs at least one block")
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.type = type
        layerCount = c.layerCount
        kvDim = c.kvDim
        group = Int(qs_kv_int8_group(Int64(c.headDim)))
        let count = c.layerCount * blockCount * blockSize * c.kvDim
        // Not zeroed: a slot is always written before it is read, and untouched pages cost nothing.
        let elementBytes = type == .int8 ? 1 : 2
        keys = AlignedBuffer(byteCount: count * elementBytes, zeroed: false)
        values = AlignedBuffer(byteCount: count * elementBytes, zeroed: false)
        keyScales = type == .int8 ? AlignedBuffer(byteCount: count / group * 4, zeroed: false) : nil
        valueScales = type == .int8 ? AlignedBuffer(byteCount: count / group * 4, zeroed: false) : nil
    }

    /// Bytes of one block across all layers, keys and values (int8: their scales included).
    public static func bytesPerBlock(_ c: ModelConfiguration, blockSize: Int = defaultBlockSize,
                                     type: KVCacheType = .fp16) -> Int {
        let values = 2 * c.layerCount * blockSize * c.kvDim
        switch type {
        case .fp16: return values * 2
        case .int8: return values + values / Int(qs_kv_int8_group(Int64(c.headDim))) * 4
        }
    }

    public var byteCount: Int {
        keys.byteCount + values.byteCount + (keyScales?.byteCount ?? 0) + (valueScales?.byteCount ?? 0)
    }
    public var tokenCapacity: Int { blockCount * blockSize }

    /// Layer `l`'s part, as the kernels take it.
    func layer(_ l: Int) -> qs_kv_layer {
        let slots = l * tokenCapacity
        switch type {
        case .fp16:
            return qs_kv_layer(dtype: QS_KV_FP16, k: keys.typed(UInt16.self) + slots * kvDim,
                               v: values.typed(UInt16.self) + slots * kvDim, k_scale: nil, v_scale: nil, group: 0)
        case .int8:
            return qs_kv_layer(dtype: QS_KV_INT8, k: keys.typed(Int8.self) + slots * kvDim,
                               v: values.typed(Int8.self) + slots * kvDim,
                               k_scale: keyScales!.typed(Float.self) + slots * kvDim / group,
                               v_scale: valueScales!.typed(Float.self) + slots * kvDim / group, group: Int64(group))
        }
    }
}
