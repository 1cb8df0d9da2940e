// PNG: the reader `segment run` uses for images and `segment score` for masks (libpng behind a chunk walk).
import SegmentImaging

extension FuzzTarget {
    static let png = FuzzTarget(name: "png", summary: "PNG image (every colour type and depth)") { bytes in
        withScratchFile("input.png", bytes) { path in
            guard let image = attempt({ try PNGImage.read(path, budget: fuzzBudget) }) else { return }
            sink(image.pixels)
            attempt { try image.labels() }
        }
    }
}
