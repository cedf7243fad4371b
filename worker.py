"""Entry point of the worker dyno: `python worker.py`."""

from worker.memory import exec_with_allocator_settings

if __name__ == "__main__":
    exec_with_allocator_settings()  # glibc reads its malloc settings only at start
    from worker.process import main

    main()
