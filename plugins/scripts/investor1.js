// Investor 1 of the seed, as a script: drop it into investors/ as investorN.js.
//
// A script investor is a plain module exporting NAME, PORTFOLIOS and
// evaluate(prices); stockd runs it in its sandboxed JavaScript interpreter (no
// files, no network, no environment; `Date.now()` gives the interval's
// timestamp). The built-ins are there; `import` is not.

export const NAME = "Investor 1";

// Portfolio id -> { ticker: shares }.
export const PORTFOLIOS = {
  1: { IBM: 1000, AAPL: 1200, FB: 900, AMZN: 2300, GOOG: 1400, TWTR: 400 },
  2: { LNKD: 900, INTC: 600, AMD: 1100, MSFT: 1200, DELL: 700, ORKL: 1200 },
};

/** Portfolio id -> NAV at `prices` (ticker -> latest price). */
export function evaluate(prices) {
  const navs = {};
  for (const [id, holdings] of Object.entries(PORTFOLIOS)) {
    navs[id] = Object.entries(holdings).reduce((nav, [ticker, shares]) => nav + shares * prices[ticker], 0);
  }
  return navs;
}
