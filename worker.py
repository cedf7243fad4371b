"""Entry point of the worker dyno: `python worker.py`."""

from worker.process import main

if __name__ == "__main__":
    main()
