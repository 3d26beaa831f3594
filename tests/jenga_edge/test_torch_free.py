"""The edge package must never import torch: gateways do not have it."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import jenga_edge

BLOCK_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _NoTorch())
"""


def all_modules() -> list[str]:
    """Every module of the edge package, subpackages included (cli/__main__ runs the CLI: left out)."""
    root = Path(jenga_edge.__file__).parent
    found = [m.name for m in pkgutil.walk_packages([str(root)], prefix="jenga_edge.")]
    return ["jenga_edge"] + [m for m in found if not m.endswith("__main__")]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + code],
        capture_output=True,
        text=True,
        cwd=Path(jenga_edge.__file__).parent.parent,
        timeout=120,
    )


def test_every_edge_module_imports_with_torch_blocked():
    mods = all_modules()
    assert len(mods) > 40 and "jenga_edge.sources.tcp" in mods and "jenga_edge.contract.bundle_format" in mods
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
    code += "assert 'torch' not in sys.modules\nprint('ok')\n"
    proc = run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_the_blocker_really_blocks():
    # Guards the test above against passing because the blocker does nothing.
    proc = run("import torch\n")
    assert proc.returncode != 0
    assert "blocked" in proc.stderr
