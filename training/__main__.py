"""``python -m training {train,eval,reproduce,sweep-none,ship,merge,soup,calibrate,device-pack}
...``: the training commands."""

import sys

from .cli import eval_main, train_main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = (
        "train",
        "eval",
        "reproduce",
        "sweep-none",
        "ship",
        "merge",
        "soup",
        "calibrate",
        "device-pack",
    )
    if not argv or argv[0] not in commands:
        print(f"usage: python -m training {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    if argv[0] == "sweep-none":
        from .none_sweep import sweep_main

        return sweep_main(argv[1:])
    if argv[0] == "calibrate":
        from .calibrate import calibrate_main

        return calibrate_main(argv[1:])
    if argv[0] == "device-pack":
        from .device_pack import device_pack_main

        return device_pack_main(argv[1:])
    if argv[0] == "merge":
        from .ship import merge_main

        return merge_main(argv[1:])
    if argv[0] == "soup":
        from .soup import soup_main

        return soup_main(argv[1:])
    if argv[0] == "ship":
        from .ship import ship_main

        return ship_main(argv[1:])
    if argv[0] == "reproduce":
        from .reproduce import reproduce_main

        return reproduce_main(argv[1:])
    return (train_main if argv[0] == "train" else eval_main)(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
