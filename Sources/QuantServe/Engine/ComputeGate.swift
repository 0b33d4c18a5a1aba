import Dispatch
import Foundation

/// One machine's cores shared by several engines (a server with several models or levels): each engine's step
/// (schedule, forward pass, sampling) runs with the gate held, so the engines take turns step by step, each step on
/// all of its threads, and never two pools compete for the same cores. Turns are first come, first served (a ticket each), so an engine that
/// steps continuously cannot starve another. An engine without a gate computes whenever it likes.
/// `@unchecked Sendable`: `next` and `serving` are read and written only with `condition` locked.
public final class ComputeGate: @unchecked Sendable, Equatable {
    private let condition = NSCondition()
    private var next = 0
    private var serving = 0

    public init() {}

    /// Runs `body` when this caller's turn comes, with the gate held.
    func run(_ body: () throws -> Void) rethrows {
        condition.lock()
        let ticket = next
        next += 1
        while serving != ticket { condition.wait() }
        condition.unlock()
        defer {
            condition.lock()
            serving += 1
            condition.broadcast()
            condition.unlock()
        }
        try body()
    }

    public static func == (a: ComputeGate, b: ComputeGate) -> Bool { a === b }
}
