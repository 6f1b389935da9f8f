"""Investor 1 of the seed, as a script: drop it into investors/ as investorN.py.

A script investor is a plain module with NAME, PORTFOLIOS and evaluate(prices);
stockd runs it in its sandboxed Python interpreter (no files, no network, no
environment; `time.time()` gives the interval's timestamp). Most of the
standard library is there: math, statistics, decimal, datetime, json, ...
"""

NAME = "Investor 1"

# Portfolio id -> {ticker: shares}.
PORTFOLIOS = {
    1: {"IBM": 1000, "AAPL": 1200, "FB": 900, "AMZN": 2300, "GOOG": 1400, "TWTR": 400},
    2: {"LNKD": 900, "INTC": 600, "AMD": 1100, "MSFT": 1200, "DELL": 700, "ORKL": 1200},
}


def evaluate(prices):
    """Portfolio id -> NAV at `prices` (ticker -> latest price)."""
    return {id: sum(shares * prices[ticker] for ticker, shares in holdings.items()) for id, holdings in PORTFOLIOS.items()}
