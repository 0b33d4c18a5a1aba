import CKernels

/// Matrices that take the same input (a layer's q, k and v; gate and up), multiplied in one call: where they all take
/// the fused kernels, x is quantized once and one pass over the pool serves them all. Each row's result is the same
/// as from `WeightMatrix.apply`.
/// `@unchecked Sendable`: the views point into the matrices' buffers, which `matrices` keeps alive and nothing writes
/// after loading.
struct MatrixGroup: @unchecked Sendable {
    let matrices: [WeightMatrix]
    /// The C views of `matrices` and their output row strides, made once.
    private let views: [qs_matrix]
    private let strides: [Int64]

    init(_ matrices: [WeightMatrix]) {
        precondition((1...3).contains(matrices.count) && Set(matrices.map(\.cols)).count == 1)
        self.matrices = matrices
        views = matrices.map(\.matrix)
        strides = matrices.map { Int64($0.rows) }
    }

    /// `matrices[m] @ x [n, cols] -> outs[m] [n, matrices[m].rows]` (`third` for a group of three).
    func apply(_ x: UnsafePointer<Float>, n: Int, into first: UnsafeMutablePointer<Float>,
               _ second: UnsafeMutablePointer<Float>, _ third: UnsafeMutablePointer<Float>? = nil,
               context: ComputeContext, scratch: ScratchSpace) {
        let fused = matrices.allSatisfy { $0.usesFusedKernels(n: n, context: context) }
        guard fused else {
            for (w, out) in zip(matrices, [first, second, third]) {
                w.apply(x, n: n, into: out!, context: context, scratch: scratch)
            }
            return
        }
        let activations = scratch.activations(floats: Int(qs_activation_scratch_floats(Int64(n), Int64(views[0].cols))))
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: 3) { outs in
            outs[0] = first
            outs[1] = second
            outs[2] = third
            views.withUnsafeBufferPointer { w in
                strides.withUnsafeBufferPointer { ldo in
                    qs_matmul_many(context.pool, context.variant, Int32(matrices.count), outs.baseAddress, ldo.baseAddress,
                                   w.baseAddress, x, Int64(n), activations)
                }
            }
        }
    }
}
