// A hostile JavaScript investor, for the sandbox's tests. It holds one share
// of IBM in portfolio 1; `evaluate` misbehaves as the first quote's ticker
// says, and otherwise values the portfolio:
// - FETCH: starts an HTTP request (an export cannot await it);
// - FETCHED: returns, as an error, what became of that request;
// - CLOCK: returns Date.now() as the NAV, in seconds.

export function name() {
  return "Hostile JavaScript";
}

export function portfolios() {
  return [{ id: 1, holdings: [{ ticker: "IBM", shares: 1 }] }];
}

let fetched = "no fetch yet";

export function evaluate(quotes) {
  const action = quotes.length > 0 ? quotes[0].ticker : "";
  if (action === "FETCH") {
    fetch("http://127.0.0.1:" + quotes[0].price + "/").then(
      (response) => { fetched = "answered " + response.status; },
      (error) => { fetched = "refused: " + error; },
    );
    return [{ portfolio: 1, nav: 1 }];
  }
  if (action === "FETCHED") {
    throw fetched;
  }
  if (action === "CLOCK") {
    return [{ portfolio: 1, nav: Date.now() / 1000 }];
  }
  return [{ portfolio: 1, nav: quotes.filter((q) => q.ticker === "IBM").reduce((sum, q) => sum + q.price, 0) }];
}
