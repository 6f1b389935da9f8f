"""Investor 2 of the seed, as a script."""

NAME = "Investor 2"

# Portfolio id -> {ticker: shares}.
PORTFOLIOS = {
    1: {"HPQ": 600, "CSCO": 1200, "ZM": 1400, "QCOM": 900, "ADBE": 800, "VZ": 1200},
    2: {"TXN": 1100, "CRM": 600, "AVGO": 700, "NVDA": 1100, "VMW": 600, "EBAY": 800},
}


def evaluate(prices):
    """Portfolio id -> NAV at `prices` (ticker -> latest price)."""
    return {id: sum(shares * prices[ticker] for ticker, shares in holdings.items()) for id, holdings in PORTFOLIOS.items()}
