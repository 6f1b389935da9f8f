// Investor 3 of the seed, as a script.

export const NAME = "Investor 3";

// Portfolio id -> { ticker: shares }.
export const PORTFOLIOS = {
  1: { HPQ: 1200, ZM: 750, DELL: 800, NVDA: 1250, IBM: 900, INTC: 1000 },
  2: { VZ: 1150, AVGO: 900, TWTR: 1200, AAPL: 1200, DELL: 500, ORKL: 900 },
};

/** Portfolio id -> NAV at `prices` (ticker -> latest price). */
export function evaluate(prices) {
  const navs = {};
  for (const [id, holdings] of Object.entries(PORTFOLIOS)) {
    navs[id] = Object.entries(holdings).reduce((nav, [ticker, shares]) => nav + shares * prices[ticker], 0);
  }
  return navs;
}
