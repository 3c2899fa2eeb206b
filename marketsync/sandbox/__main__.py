"""Run the marketplace sandbox in the foreground: ``python -m marketsync.sandbox [--bricklink-port N] [--brickowl-port N]``
(commands on standard input: see :mod:`marketsync.sandbox.commands`)."""

from __future__ import annotations

import argparse

from marketsync.sandbox import serve_forever_cli


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m marketsync.sandbox", description="Serve the BrickLink/BrickOwl sandbox on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--bricklink-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--brickowl-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--empty", action="store_true", help="start with empty stores instead of the demo store")
    parser.add_argument("--quirks", action="store_true", help="send the messier shapes of real captured payloads")
    args = parser.parse_args(argv)
    serve_forever_cli(args.bricklink_port, args.brickowl_port, demo=not args.empty, seed=args.seed, quirks=args.quirks)


if __name__ == "__main__":
    main()
