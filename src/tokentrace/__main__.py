"""``python -m tokentrace``: the same command as the ``tokentrace`` console script."""

from .cli import main

if __name__ == "__main__":
    main()
