"""The demo world: a seeded, believable small video platform (clips, manifest, interaction log, truth).

`generate_world` writes it; `load_truth` reads its ground truth back for evaluation; `write_video`
is the small PyAV writer it uses, also handy for making odd test files.
"""

from .truth import Truth, load_truth
from .video_writer import write_video
from .world import WorldSummary, generate_world

WORLD_DIR = "demo-world"  # where `vidrec demo` keeps the world inside a data dir (evaluation finds its truth there)

__all__ = ["generate_world", "WorldSummary", "load_truth", "Truth", "write_video", "WORLD_DIR"]
