"""The demo world: a seeded, believable small video platform (clips, manifest, interaction log, truth),
and `vidrec demo`, which runs the whole product on it.

The world is a data source apart from the product: `models/`, `ingest/` and `index/` never import it.
`generate_world` writes it; `load_truth` reads its ground truth back, and whoever evaluates against it
(the `eval` command, tests, benchmarks) passes it in as an oracle; `write_video` is the small PyAV
writer it uses, also handy for making odd test files.
"""

from .truth import Truth, load_truth, truth_in
from .video_writer import write_video
from .world import WorldSummary, generate_world

__all__ = ["generate_world", "WorldSummary", "load_truth", "truth_in", "Truth", "write_video"]
