"""Investor 1 of the seed, written in Python.

stockd loads it like any investor: `just investor 4 python` copies this file to
`plugins/python/investor4.py` (when it does not exist yet) and builds
`investors/investor4.wasm` from it; edit the copy and run the command again.
The contract is `wit/investor.wit`; componentize-py turns this module into a
WebAssembly component that exports it.

The sandbox: no files, no network, no environment; `time.time()` gives the
interval's timestamp, not the host's clock.
"""

import wit_world
from componentize_py_types import Err
from wit_world import Holding, Portfolio, Quote, Valuation

NAME = "Investor 1"

# Portfolio id -> {ticker: shares}, the seed's Inv1.py holdings.
PORTFOLIOS = {
    1: {"IBM": 1000, "AAPL": 1200, "FB": 900, "AMZN": 2300, "GOOG": 1400, "TWTR": 400},
    2: {"LNKD": 900, "INTC": 600, "AMD": 1100, "MSFT": 1200, "DELL": 700, "ORKL": 1200},
}


class WitWorld(wit_world.WitWorld):
    def name(self) -> str:
        return NAME

    def portfolios(self) -> list[Portfolio]:
        return [
            Portfolio(id, [Holding(ticker, float(shares)) for ticker, shares in holdings.items()])
            for id, holdings in PORTFOLIOS.items()
        ]

    def evaluate(self, quotes: list[Quote]) -> list[Valuation]:
        prices = {quote.ticker: quote.price for quote in quotes}
        valuations = []
        for id, holdings in PORTFOLIOS.items():
            nav = 0.0
            for ticker, shares in holdings.items():
                if ticker not in prices:
                    raise Err(f"no price for {ticker}")
                nav += shares * prices[ticker]
            valuations.append(Valuation(id, nav))
        return valuations
