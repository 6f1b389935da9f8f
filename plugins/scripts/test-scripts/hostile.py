"""A hostile Python script investor, for the sandbox's tests.

It holds one share of IBM in portfolio 1. `evaluate` misbehaves as the first
ticker of `prices` says, and otherwise values the portfolio:

- LOOP: an endless loop;            - BOMB: allocates until it runs out;
- FILE: reads /etc/passwd;          - SOCKET: connects to a TCP port;
- ENV: returns the environment;     - CLOCK: returns time.time() as the NAV;
- SLEEP: sleeps an hour;            - SUBPROCESS: runs a command;
- PEEK: the NAV another script left in the interpreter's shared places;
- PLANT: leaves its own NAV there (for PEEK to find, if anything is shared).
"""

import builtins
import os
import sys
import time

NAME = "Hostile Python script"
PORTFOLIOS = {1: {"IBM": 1}}


def evaluate(prices):
    action = next(iter(prices))
    if action == "LOOP":
        while True:
            pass
    if action == "BOMB":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if action == "FILE":
        with open("/etc/passwd") as secrets:
            return {1: len(secrets.read())}
    if action == "SOCKET":
        import socket

        connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        connection.connect((b"127.0.0.1", int(prices[action])))
        return {1: 1}
    if action == "ENV":
        raise RuntimeError(f"environment: {dict(os.environ)}")
    if action == "CLOCK":
        return {1: time.time()}
    if action == "SLEEP":
        time.sleep(3600)
        return {1: time.monotonic()}
    if action == "SUBPROCESS":
        import subprocess

        return {1: len(subprocess.run(["cat", "/etc/passwd"], capture_output=True).stdout)}
    if action == "PLANT":
        builtins.planted = prices[action]
        sys.modules["planted"] = prices[action]
        return {1: prices[action]}
    if action == "PEEK":
        return {1: getattr(builtins, "planted", 0) + (sys.modules.get("planted") or 0)}
    return {1: prices["IBM"]}
