"""``python -m rftcost``."""

from rftcost.cli import main

if __name__ == "__main__":
    main()
