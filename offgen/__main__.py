"""``python -m offgen`` runs the ``offgen`` command line."""

from offgen.cli import main

main()
