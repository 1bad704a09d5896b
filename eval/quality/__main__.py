"""``python -m eval.quality run``: see docs/quality.md."""

from eval.quality.cli import main

main()
