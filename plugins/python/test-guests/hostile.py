"""A hostile Python investor, for the sandbox's tests.

It holds one share of IBM in portfolio 1. `evaluate` misbehaves as the first
quote's ticker says (the tests call it with such a quote), and otherwise
values the portfolio:

- LOOP: an endless loop;          - BOMB: allocates until it runs out;
- FILE: reads /etc/passwd;        - SOCKET: connects to a TCP port;
- ENV: returns the environment;   - CLOCK: returns time.time() as the NAV;
- SLEEP: sleeps an hour, then returns time.monotonic() as the NAV.
"""

import os
import socket
import time

import wit_world
from componentize_py_types import Err
from wit_world import Holding, Portfolio, Quote, Valuation


class WitWorld(wit_world.WitWorld):
    def name(self) -> str:
        return "Hostile Python"

    def portfolios(self) -> list[Portfolio]:
        return [Portfolio(1, [Holding("IBM", 1.0)])]

    def evaluate(self, quotes: list[Quote]) -> list[Valuation]:
        action = quotes[0].ticker if quotes else ""
        if action == "LOOP":
            while True:
                pass
        if action == "BOMB":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if action == "FILE":
            with open("/etc/passwd") as secrets:
                return [Valuation(1, float(len(secrets.read())))]
        if action == "SOCKET":
            # A bytes host: no name lookup, straight to connect().
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            connection.connect((b"127.0.0.1", int(quotes[0].price)))
            connection.sendall(b"hello from a plugin")
            return [Valuation(1, 1.0)]
        if action == "ENV":
            raise Err(f"environment: {dict(os.environ)}")
        if action == "CLOCK":
            return [Valuation(1, time.time())]
        if action == "SLEEP":
            time.sleep(3600)
            return [Valuation(1, time.monotonic())]
        return [Valuation(1, sum(quote.price for quote in quotes if quote.ticker == "IBM"))]
