import XCTest
@testable import QuantServe

final class StopStringTests: XCTestCase {
    func testStopSpanningTokensIsNeverEmitted() {
        var m = StopStringMatcher(stops: ["END"])
        var out = ""
        for piece in ["Hello E", "N", "D more"] {
            let (emit, stopped) = m.append(piece)
            out += emit
            if stopped { break }
        }
        XCTAssertEqual(out, "Hello ")
    }

    func testHeldTextIsReleasedWhenItTurnsOutNotToBeAStop() {
        var m = StopStringMatcher(stops: ["\n\n", "###"])
        XCTAssertEqual(m.append("a#").emit, "a")
        XCTAssertEqual(m.append("#b").emit, "##b")
        XCTAssertEqual(m.append("c\n").emit, "c")
        XCTAssertEqual(m.flush(), "\n")
    }

    func testEarliestStopWins() {
        var m = StopStringMatcher(stops: ["cd", "b"])
        let (emit, stopped) = m.append("abcd")
        XCTAssertTrue(stopped)
        XCTAssertEqual(emit, "a")
    }

    func testNoStopsPassesTextThrough() {
        var m = StopStringMatcher(stops: [])
        XCTAssertEqual(m.append("abc").emit, "abc")
    }
}
