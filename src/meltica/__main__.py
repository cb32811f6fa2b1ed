"""`python -m meltica`: the CLI without the console script."""

from meltica.cli import main

main()
