// A hostile JavaScript script investor, for the sandbox's tests.
//
// It holds one share of IBM in portfolio 1. `evaluate` misbehaves as the
// first ticker of `prices` says, and otherwise values the portfolio:
// LOOP: an endless loop; BOMB: allocates until it runs out; CLOCK: returns
// Date.now() / 1000 as the NAV; PLANT: leaves its NAV on globalThis; PEEK:
// the NAV another script left there (0 if nothing is shared).

export const NAME = "Hostile JavaScript script";
export const PORTFOLIOS = { 1: { IBM: 1 } };

export function evaluate(prices) {
  const action = Object.keys(prices)[0];
  if (action === "LOOP") {
    for (;;) {}
  }
  if (action === "BOMB") {
    const hoard = [];
    for (;;) {
      hoard.push(new Uint8Array(16 << 20));
    }
  }
  if (action === "CLOCK") {
    return { 1: Date.now() / 1000 };
  }
  if (action === "PLANT") {
    globalThis.planted = prices[action];
    return { 1: prices[action] };
  }
  if (action === "PEEK") {
    return { 1: globalThis.planted ?? 0 };
  }
  return { 1: prices.IBM };
}
