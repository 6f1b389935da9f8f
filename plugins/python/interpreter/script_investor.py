"""stockd's Python interpreter for investor scripts (`investors/investorN.py`).

componentize-py builds this module, with the standard library modules an
investor may want already imported, into one component that exports the
`investor` world (`wit/investor.wit`, world `script-investor`). stockd
compiles it once and gives every Python investor an instance of its own;
the instance asks the host for its script on the first call and runs it.

A script is a plain module:

    NAME = "Investor 7"
    PORTFOLIOS = {1: {"IBM": 1000, "AAPL": 1200}, 2: {"MSFT": 500}}
    def evaluate(prices):            # prices: ticker -> latest price
        return {1: nav, 2: nav}      # portfolio id -> NAV

An exception in `evaluate` publishes nothing this interval; its message
names the script's line.
"""

# Preloaded: imported here, at build time, so that a script's `import` of
# them finds them (the sandbox has no files to import from).
import bisect  # noqa: F401
import builtins
import collections  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import enum  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import math
import random  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import traceback
import typing  # noqa: F401

import wit_world
from componentize_py_types import Err
from wit_world import Holding, Portfolio, Quote, Valuation
from wit_world.imports import script


class Unusable(Exception):
    """The script cannot run as an investor; the message says where."""


def _where(error: BaseException, file: str) -> str:
    """`investor7.py, line 12: ` for the deepest frame of the script."""
    if isinstance(error, SyntaxError) and error.filename == file and error.lineno:
        return f"{file}, line {error.lineno}: "
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == file]
    return f"{file}, line {lines[-1]}: " if lines else f"{file}: "


def _describe(error: BaseException, file: str) -> str:
    if isinstance(error, SyntaxError):
        return f"{_where(error, file)}{type(error).__name__}: {error.msg}"
    return f"{_where(error, file)}{type(error).__name__}: {error}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Investor:
    """A script run and checked: its name, portfolios and `evaluate`."""

    def __init__(self, file: str, text: str):
        self.file = file
        namespace = {"__name__": file.removesuffix(".py"), "__file__": file, "__builtins__": builtins}
        try:
            exec(compile(text, file, "exec"), namespace)
        except Exception as error:
            raise Unusable(_describe(error, file)) from None
        self.name = namespace.get("NAME")
        if not isinstance(self.name, str) or not self.name.strip():
            raise Unusable(f"{file}: NAME must be a non-empty string, e.g. NAME = \"Investor 7\"")
        self.portfolios = self._check_portfolios(namespace.get("PORTFOLIOS"))
        self.evaluate = namespace.get("evaluate")
        if not callable(self.evaluate):
            raise Unusable(f"{file}: no function evaluate(prices); define one that returns {{portfolio id: NAV}}")

    def _check_portfolios(self, portfolios) -> dict:
        file = self.file
        shape = 'a dict of dicts, e.g. PORTFOLIOS = {1: {"IBM": 1000, "AAPL": 1200}}'
        if not isinstance(portfolios, dict) or not portfolios:
            raise Unusable(f"{file}: PORTFOLIOS must be {shape}")
        checked = {}
        for id, holdings in portfolios.items():
            if not isinstance(id, int) or isinstance(id, bool) or not 1 <= id < 2**32:
                raise Unusable(f"{file}: PORTFOLIOS has the key {id!r}: portfolio ids are whole numbers >= 1")
            if not isinstance(holdings, dict) or not holdings:
                raise Unusable(f"{file}: PORTFOLIOS[{id}] must be a non-empty dict of ticker -> shares")
            for ticker, shares in holdings.items():
                if not isinstance(ticker, str) or not _is_number(shares) or not math.isfinite(shares) or shares < 0:
                    raise Unusable(
                        f"{file}: PORTFOLIOS[{id}] holds {ticker!r}: {shares!r}; "
                        "holdings are ticker (a string) -> shares (a finite number >= 0)"
                    )
            checked[id] = {ticker: float(shares) for ticker, shares in holdings.items()}
        return checked


_investor = None


def _loaded() -> Investor:
    """The script of this instance, run on the first call."""
    global _investor
    if _investor is None:
        file = script.source()
        try:
            _investor = Investor(file.name, file.text)
        except Unusable as error:
            script.unusable(str(error))
            raise
    return _investor


class WitWorld(wit_world.WitWorld):
    def name(self) -> str:
        return _loaded().name

    def portfolios(self) -> list[Portfolio]:
        return [
            Portfolio(id, [Holding(ticker, shares) for ticker, shares in holdings.items()])
            for id, holdings in _loaded().portfolios.items()
        ]

    def evaluate(self, quotes: list[Quote]) -> list[Valuation]:
        investor = _loaded()
        file = investor.file
        prices = {quote.ticker: quote.price for quote in quotes}
        try:
            navs = investor.evaluate(prices)
        except Exception as error:
            raise Err(_describe(error, file)) from None
        if not isinstance(navs, dict):
            raise Err(f"{file}: evaluate returned {type(navs).__name__}, not a dict of portfolio id -> NAV")
        valuations = []
        for id, nav in navs.items():
            if not isinstance(id, int) or isinstance(id, bool) or not 0 <= id < 2**32:
                raise Err(f"{file}: evaluate returned the key {id!r}: portfolio ids are whole numbers >= 1")
            if not _is_number(nav):
                raise Err(f"{file}: evaluate returned {nav!r} for portfolio {id}: a NAV is a number")
            valuations.append(Valuation(id, float(nav)))
        return valuations
