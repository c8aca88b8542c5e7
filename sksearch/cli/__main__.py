"""`python -m sksearch.cli ...`, the same as the `sksearch` command."""

from sksearch.cli import main

raise SystemExit(main())
