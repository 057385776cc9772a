#!/usr/bin/env python3
"""Hostile clients and local users against a real `hyperglass start` (issue 11).

Usage: hostile.py PRODUCTS_DIR SCENARIO.  Exit 0 when the supervisor withstood the scenario, 1 when
not (the reason on stderr), 77 when it cannot run here (not root). One JSON line of figures on stdout.
Scenarios: control_clients.py (the control socket) and local_users.py (runtime directory, worker
sockets, signals); support.py is the harness.
"""
import os, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import backlog  # noqa: E402
import control_clients  # noqa: E402
import local_users  # noqa: E402
import round_two  # noqa: E402
import round_three  # noqa: E402
import round_four  # noqa: E402
import support  # noqa: E402

SCENARIOS = {name: getattr(module, name) for module in (backlog, control_clients, local_users, round_two, round_three, round_four)
             for name in dir(module) if not name.startswith("_") and callable(getattr(module, name))
             and getattr(getattr(module, name), "__module__", "") == module.__name__}

if __name__ == "__main__":
    if os.getuid() != 0:
        print("{}")
        print("SKIP: needs root to act as other users", file=sys.stderr)
        sys.exit(77)
    support.PRODUCTS = sys.argv[1]
    SCENARIOS[sys.argv[2]]()
