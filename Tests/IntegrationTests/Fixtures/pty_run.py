#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and copies what it wrote there, byte for byte, to stdout.

For `hyperglassctl reload --wait`, whose progress is one live line on a terminal: the test reads the
raw bytes (carriage returns and erase-line sequences included). Exits with the command's status.
"""
import os, pty, sys

# pty.spawn copies everything the command writes on the terminal to our stdout as it comes.
status = pty.spawn(sys.argv[1:])
sys.exit(os.waitstatus_to_exitcode(status))
