/// An element of a `BinaryHeap`: `precedes` says which of two comes out first.
protocol HeapElement {
    static func precedes(_ a: Self, _ b: Self) -> Bool
}

/// A binary heap (priority queue); `pop` returns the element that precedes all others.
struct BinaryHeap<Element: HeapElement> {
    private(set) var elements: [Element] = []

    var isEmpty: Bool { elements.isEmpty }

    mutating func removeAll() { elements.removeAll(keepingCapacity: true) }

    mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Element.precedes(elements[child], elements[parent]) else { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !elements.isEmpty else { return nil }
        let top = elements[0]
        let last = elements.removeLast()
        if !elements.isEmpty {
            elements[0] = last
            var parent = 0
            let n = elements.count
            while true {
                let left = 2 * parent + 1
                guard left < n else { break }
                var best = left
                let right = left + 1
                if right < n && Element.precedes(elements[right], elements[left]) { best = right }
                guard Element.precedes(elements[best], elements[parent]) else { break }
                elements.swapAt(best, parent)
                parent = best
            }
        }
        return top
    }
}
