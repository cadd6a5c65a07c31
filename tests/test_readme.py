"""The README's Python blocks run as written (a tour that fails is worse than none)."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    """Each block may use what an earlier one defined, as a reader would type them."""
    assert BLOCKS
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for index, block in enumerate(BLOCKS):
        exec(compile(block, f"README.md python block {index}", "exec"), namespace)


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1).strip().splitlines()
    assert first[0].startswith('pip install ".[all]" && chainrule train --dataset spiral')
    assert first[1].startswith('pip install -e ".[test]" && pytest')
