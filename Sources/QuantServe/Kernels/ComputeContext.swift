import CKernels
import COpenBLAS

/// The threads and kernel variant one engine loop computes with. Owned by that loop and used from it alone.
public final class ComputeContext {
    public let threads: Int
    public let variant: qs_variant
    let pool: OpaquePointer

    public init(threads: Int = ComputeContext.defaultThreadCount, variant: qs_variant = qs_best_variant()) {
        self.threads = max(1, threads)
        self.variant = variant
        pool = qs_pool_create(Int32(self.threads))
        // OpenBLAS runs the large products between our own kernels; the two never run at once.
        openblas_set_num_threads(Int32(self.threads))
    }

    deinit { qs_pool_destroy(pool) }

    public static var defaultThreadCount: Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    public var variantName: String { String(cString: qs_variant_name(variant)) }

    /// The kernel variant a new context picks on this CPU (with `QS_KERNELS` applied).
    public static var bestVariantName: String { String(cString: qs_variant_name(qs_best_variant())) }
}

#if canImport(Glibc)
import Glibc
#endif
