"""Entry point of the worker dyno: `python worker.py`."""

import sys

from worker.memory import exec_with_allocator_settings

if __name__ == "__main__":
    exec_with_allocator_settings(sys.argv)  # glibc reads its malloc settings only at start
    from worker.process import main

    main()
