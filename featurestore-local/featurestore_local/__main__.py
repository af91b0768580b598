"""``python -m featurestore_local``: see :func:`cli.main`."""

from .cli import main

raise SystemExit(main())
