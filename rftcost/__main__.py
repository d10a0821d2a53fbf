"""``python -m rftcost``."""

from rftcost.cli import run

if __name__ == "__main__":
    run()
