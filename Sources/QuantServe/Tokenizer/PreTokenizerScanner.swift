/// The scanners behind `PreTokenizer`. Each walks code points left to right and, at every position, takes the first
/// alternative of its regex that matches there (leftmost-first, as PCRE and std::regex do), appending the end index
/// of each word. The code points come with their classes precomputed (`ScalarClass`).
struct PreTokenizerScanner {
    let values: UnsafeBufferPointer<UInt32>
    let classes: UnsafeBufferPointer<ScalarClass>

    private static let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A

    @inline(__always) private func isNewline(_ i: Int) -> Bool { values[i] == Self.cr || values[i] == Self.lf }

    /// ASCII lower case of a code point (the contraction alternatives only list ASCII letters).
    @inline(__always) private func lower(_ v: UInt32) -> UInt32 { (0x41...0x5A).contains(v) ? v + 0x20 : v }

    /// Length of a contraction (`'s 't 'm 'd 're 've 'll`) at `p`, or 0. `caseInsensitive` for the Llama 3 form.
    @inline(__always)
    private func contraction(at p: Int, end: Int, caseInsensitive: Bool) -> Int {
        guard values[p] == Self.apostrophe, p + 1 < end else { return 0 }
        let n1 = caseInsensitive ? lower(values[p + 1]) : values[p + 1]
        switch n1 {
        case 0x73, 0x74, 0x6D, 0x64: return 2 // s t m d
        default: break
        }
        guard p + 2 < end else { return 0 }
        let n2 = caseInsensitive ? lower(values[p + 2]) : values[p + 2]
        switch (n1, n2) {
        case (0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C): return 3 // re ve ll
        default: return 0
        }
    }

    /// Where a whitespace run starting at `p` ends for `\s+(?!\S)|\s+`: the whole run when it reaches the end of the
    /// range or is one code point long, otherwise all but its last code point (which then leads the next word).
    @inline(__always)
    private func whitespaceEnd(from p: Int, runEnd e: Int, end: Int) -> Int {
        if e - p > 1 && e < end { return e - 1 }
        return e > p ? e : p + 1
    }

    func gpt2(_ range: Range<Int>, into ends: inout [Int]) {
        let end = range.upperBound
        var p = range.lowerBound
        while p < end {
            let k = contraction(at: p, end: end, caseInsensitive: false)
            if k > 0 {
                p += k
                ends.append(p)
                continue
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
            let leadingSpace = values[p] == Self.space
            if !leadingSpace || p + 1 < end {
                let q = leadingSpace ? p + 1 : p
                let c = classes[q]
                let kind: ScalarClass? = c.contains(.letter) ? .letter : c.contains(.number) ? .number
                    : c.isOther ? [] : nil
                if let kind {
                    var r = q + 1
                    while r < end && (kind.isEmpty ? classes[r].isOther : classes[r].contains(kind)) { r += 1 }
                    p = r
                    ends.append(p)
                    continue
                }
            }
            var e = p
            while e < end && classes[e].contains(.whitespace) { e += 1 }
            p = whitespaceEnd(from: p, runEnd: e, end: end)
            ends.append(p)
        }
    }

    func llama3(_ range: Range<Int>, maxDigits: Int, into ends: inout [Int]) {
        let end = range.upperBound
        var p = range.lowerBound
        while p < end {
            let k = contraction(at: p, end: end, caseInsensitive: true)
            if k > 0 {
                p += k
                ends.append(p)
                continue
            }
            let c = classes[p]
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !isNewline(p) && !c.contains(.number) {
                if c.contains(.letter) || (p + 1 < end && classes[p + 1].contains(.letter)) {
                    p += 1
                    while p < end && classes[p].contains(.letter) { p += 1 }
                    ends.append(p)
                    continue
                }
            }
            // `\p{N}{1,maxDigits}`
            if c.contains(.number) {
                let start = p
                while p < end && p - start < maxDigits && classes[p].contains(.number) { p += 1 }
                ends.append(p)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let q = values[p] == Self.space && p + 1 < end && classes[p + 1].isOther ? p + 1 : p
            if classes[q].isOther {
                var r = q + 1
                while r < end && classes[r].isOther { r += 1 }
                while r < end && isNewline(r) { r += 1 }
                p = r
                ends.append(p)
                continue
            }
            // `\s*[\r\n]+`: through the last CR or LF of the whitespace run.
            var e = p
            var lastNewline = -1
            while e < end && classes[e].contains(.whitespace) {
                if isNewline(e) { lastNewline = e }
                e += 1
            }
            if lastNewline >= 0 {
                p = lastNewline + 1
            } else {
                // `\s+(?!\S)|\s+`
                p = whitespaceEnd(from: p, runEnd: e, end: end)
            }
            ends.append(p)
        }
    }

    /// std::regex_iterator over `[class]+`: each maximal run of the class is a piece, and so is each gap between.
    func splitRuns(_ range: Range<Int>, of kind: ScalarClass, into ends: inout [Int]) {
        var p = range.lowerBound
        while p < range.upperBound {
            let inRun = classes[p].contains(kind)
            while p < range.upperBound && classes[p].contains(kind) == inRun { p += 1 }
            ends.append(p)
        }
    }

    /// std::regex_iterator over `[0-9][0-9][0-9]`: leftmost non-overlapping triples of ASCII digits are pieces, and
    /// so is each gap between them.
    func splitThreeASCIIDigits(_ range: Range<Int>, into ends: inout [Int]) {
        @inline(__always) func isDigit(_ i: Int) -> Bool { (0x30...0x39).contains(values[i]) }
        var gapStart = range.lowerBound
        var p = range.lowerBound
        while p < range.upperBound {
            if p + 3 <= range.upperBound && isDigit(p) && isDigit(p + 1) && isDigit(p + 2) {
                if p > gapStart { ends.append(p) }
                p += 3
                ends.append(p)
                gapStart = p
            } else {
                p += 1
            }
        }
        if gapStart < range.upperBound { ends.append(range.upperBound) }
    }

    /// Applies `body` to each piece (given by its end index, the first starting at `start`) and collects the result.
    func eachPiece(_ start: Int, _ pieces: [Int], _ body: (Range<Int>, inout [Int]) -> Void) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(pieces.count)
        var lo = start
        for hi in pieces {
            body(lo..<hi, &out)
            lo = hi
        }
        return out
    }
}
