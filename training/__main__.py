"""``python -m training {train,eval,reproduce,ship,calibrate} ...``: the training commands."""

import sys

from .cli import eval_main, train_main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "eval", "reproduce", "ship", "calibrate"):
        print(
            "usage: python -m training {train,eval,reproduce,ship,calibrate} ...",
            file=sys.stderr,
        )
        return 2
    if argv[0] == "calibrate":
        from .calibrate import calibrate_main

        return calibrate_main(argv[1:])
    if argv[0] == "ship":
        from .ship import ship_main

        return ship_main(argv[1:])
    if argv[0] == "reproduce":
        from .reproduce import reproduce_main

        return reproduce_main(argv[1:])
    return (train_main if argv[0] == "train" else eval_main)(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
