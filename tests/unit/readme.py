"""The README's code blocks, read by the tests that run them and by .ci/packaging.py (no heavy imports here)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
TESTING_SECTION = "## Testing your own DAGs with the emulator"
QUICKSTART_SECTION = "## Quickstart"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of a README section (from its heading to the next one of the same level)."""
    text = README.read_text()
    start = text.index(section + "\n")
    end = text.find("\n## ", start + len(section))
    return re.findall(r"^```python\n(.*?)^```$", text[start : end if end != -1 else None], re.DOTALL | re.MULTILINE)
