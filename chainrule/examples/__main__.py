"""python -m chainrule.examples [composition|llc|all]"""

import sys

from .composition import main as _composition_main
from .llc import main as _llc_main

_MAIN = {"composition": _composition_main, "llc": _llc_main}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    which = argv[0] if argv else "all"
    if which not in (*_MAIN, "all"):
        print(f"unknown example '{which}': choose composition, llc or all", file=sys.stderr)
        return 2
    names = list(_MAIN) if which == "all" else [which]
    for i, name in enumerate(names):
        if i:
            print()
        print(f"== {name} ==")
        print(_MAIN[name]())
    return 0


if __name__ == "__main__":
    sys.exit(main())
