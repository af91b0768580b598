"""``python -m features.online.local_runtime``: see :func:`cli.main`."""

from .cli import main

raise SystemExit(main())
