// Investor 1 of the seed, written in JavaScript.
//
// stockd loads it like any investor: `just investor 4 js` copies this file to
// `plugins/js/investor4.js` (when it does not exist yet) and builds
// `investors/investor4.wasm` from it; edit the copy and run the command again.
// The contract is `wit/investor.wit`; componentize-js turns this module into a
// WebAssembly component that exports it.
//
// The sandbox: no files, no network (fetch is refused), no environment;
// `Date.now()` gives the interval's timestamp, not the host's clock.

const NAME = "Investor 1";

// Portfolio id -> [ticker, shares] pairs, the seed's Investor 1 holdings.
const PORTFOLIOS = new Map([
  [1, [["IBM", 1000], ["AAPL", 1200], ["FB", 900], ["AMZN", 2300], ["GOOG", 1400], ["TWTR", 400]]],
  [2, [["LNKD", 900], ["INTC", 600], ["AMD", 1100], ["MSFT", 1200], ["DELL", 700], ["ORKL", 1200]]],
]);

/** The investor's display name. */
export function name() {
  return NAME;
}

/** The portfolios, as `list<portfolio>`. */
export function portfolios() {
  return [...PORTFOLIOS].map(([id, holdings]) => ({
    id,
    holdings: holdings.map(([ticker, shares]) => ({ ticker, shares })),
  }));
}

/** One valuation per portfolio; throwing returns `err` with the message. */
export function evaluate(quotes) {
  const prices = new Map(quotes.map((quote) => [quote.ticker, quote.price]));
  return [...PORTFOLIOS].map(([id, holdings]) => {
    let nav = 0;
    for (const [ticker, shares] of holdings) {
      if (!prices.has(ticker)) {
        throw `no price for ${ticker}`;
      }
      nav += shares * prices.get(ticker);
    }
    return { portfolio: id, nav };
  });
}
