"""Investor 3 of the seed, as a script."""

NAME = "Investor 3"

# Portfolio id -> {ticker: shares}.
PORTFOLIOS = {
    1: {"HPQ": 1200, "ZM": 750, "DELL": 800, "NVDA": 1250, "IBM": 900, "INTC": 1000},
    2: {"VZ": 1150, "AVGO": 900, "TWTR": 1200, "AAPL": 1200, "DELL": 500, "ORKL": 900},
}


def evaluate(prices):
    """Portfolio id -> NAV at `prices` (ticker -> latest price)."""
    return {id: sum(shares * prices[ticker] for ticker, shares in holdings.items()) for id, holdings in PORTFOLIOS.items()}
