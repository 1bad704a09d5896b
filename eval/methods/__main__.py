"""``python -m eval.methods``: see docs/models.md#which-method-answers."""

from eval.methods.cli import main

raise SystemExit(main())
