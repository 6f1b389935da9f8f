// Investor 2 of the seed, as a script.

export const NAME = "Investor 2";

// Portfolio id -> { ticker: shares }.
export const PORTFOLIOS = {
  1: { HPQ: 600, CSCO: 1200, ZM: 1400, QCOM: 900, ADBE: 800, VZ: 1200 },
  2: { TXN: 1100, CRM: 600, AVGO: 700, NVDA: 1100, VMW: 600, EBAY: 800 },
};

/** Portfolio id -> NAV at `prices` (ticker -> latest price). */
export function evaluate(prices) {
  const navs = {};
  for (const [id, holdings] of Object.entries(PORTFOLIOS)) {
    navs[id] = Object.entries(holdings).reduce((nav, [ticker, shares]) => nav + shares * prices[ticker], 0);
  }
  return navs;
}
