"""``chainrule`` and ``python -m chainrule``: the command, or one line saying what to install.

The command needs the ``[cli]`` extra (click, rich, safetensors, scikit-learn). After a plain
``pip install chainrule`` (numpy only) the ``chainrule`` script still exists; instead of a
``ModuleNotFoundError`` traceback it says which extra to install and exits with status 1.
"""

from __future__ import annotations

import sys

#: what ``chainrule.cli`` imports when it starts
_NEEDED = ("click", "rich")


def main(argv=None) -> int:
    try:
        from .cli import main as cli_main
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if top not in _NEEDED:
            raise
        print(
            f"error: the chainrule command needs the package {top}, which is not installed: "
            f'pip install "chainrule[cli]"',
            file=sys.stderr,
        )
        return 1
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
