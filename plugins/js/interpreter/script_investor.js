// stockd's JavaScript interpreter for investor scripts (`investors/investorN.js`).
//
// componentize-js builds this module into one component that exports the
// `investor` world (`wit/investor.wit`, world `script-investor`). stockd
// compiles it once and gives every JavaScript investor an instance of its
// own; the instance asks the host for its script on the first call and runs
// it.
//
// A script is a plain module:
//
//   export const NAME = "Investor 8";
//   export const PORTFOLIOS = { 1: { IBM: 1000, AAPL: 1200 }, 2: { MSFT: 500 } };
//   export function evaluate(prices) {        // prices: ticker -> latest price
//     return { 1: nav, 2: nav };              // portfolio id -> NAV
//   }
//
// Throwing in `evaluate` publishes nothing this interval; the message names
// the script's line.

import { source, unusable } from "stock:investor/script@0.1.0";

// The script runs as the body of a function (a module cannot be compiled
// from text here): its `export` keywords are dropped and the three names
// returned. These are the body's first lines in the engine's numbering.
const BODY_FIRST_LINE = firstLine(() => new Function("null.x")(), 1);
const SYNTAX_FIRST_LINE = firstLine(() => new Function("\n)"), 2);

function firstLine(fail, line) {
  try {
    fail();
  } catch (error) {
    if (Number.isInteger(error.lineNumber)) {
      return error.lineNumber - line + 1;
    }
  }
  return 1;
}

class Unusable extends Error {}

/** The script's line count, once it is known (a line past it is its end). */
let scriptLines = Infinity;

/** `investor8.js, line 12: TypeError: …` for an error of the script. */
function describe(error, file) {
  const first = error instanceof SyntaxError ? SYNTAX_FIRST_LINE : BODY_FIRST_LINE;
  const line = lineOf(error, file, first);
  const where = !line ? file : line > scriptLines ? `${file}, line ${scriptLines} (the end of the file)` : `${file}, line ${line}`;
  if (error instanceof Error) {
    return `${where}: ${error.name}: ${error.message}`;
  }
  return `${where}: ${String(error)}`;
}

/** The script's line of an error: from the innermost frame of the script. */
function lineOf(error, file, first) {
  if (!(error instanceof Error)) {
    return null;
  }
  // SpiderMonkey frames: "evaluate@…Function:LINE:COL" for code made by `new Function`.
  for (const frame of String(error.stack ?? "").split("\n")) {
    const match = /Function:(\d+):\d+$/.exec(frame);
    if (match) {
      return Number(match[1]) - first + 1;
    }
  }
  if (Number.isInteger(error.lineNumber) && error instanceof SyntaxError) {
    return error.lineNumber - first + 1;
  }
  return null;
}

const EXPORTED = /^(\s*)export\s+(?=(?:const|let|var|function|async\s+function|class)\b)/gm;

/** Runs the script's text; returns its NAME, PORTFOLIOS and evaluate. */
function run(file, text) {
  scriptLines = text.replace(/\n$/, "").split("\n").length;
  const body = text.replace(EXPORTED, "$1");
  const leftover = /^\s*(export|import)\b/m.exec(body);
  if (leftover) {
    const line = body.slice(0, leftover.index + leftover[0].length).split("\n").length;
    throw new Unusable(
      `${file}, line ${line}: only \`export const|let|var|function\` is supported here, and no \`import\` (the built-ins are there)`,
    );
  }
  const names = ["NAME", "PORTFOLIOS", "evaluate"]
    .map((name) => `${name}: typeof ${name} === "undefined" ? undefined : ${name}`)
    .join(", ");
  try {
    return new Function(`${body}\n;return { ${names} };`)();
  } catch (error) {
    throw new Unusable(describe(error, file));
  }
}

function isNumber(value) {
  return typeof value === "number";
}

/** The entries of a plain object or a Map. */
function entries(value) {
  return value instanceof Map ? [...value.entries()] : Object.entries(value);
}

function isTable(value) {
  return value instanceof Map || (typeof value === "object" && value !== null && !Array.isArray(value));
}

/** A portfolio id from an object key ("1") or a Map key (1). */
function portfolioId(key) {
  const id = typeof key === "string" && /^[0-9]+$/.test(key) ? Number(key) : key;
  return Number.isInteger(id) && id >= 0 && id < 2 ** 32 ? id : null;
}

class Investor {
  constructor(file, text) {
    this.file = file;
    const script = run(file, text);
    if (typeof script.NAME !== "string" || script.NAME.trim() === "") {
      throw new Unusable(`${file}: NAME must be a non-empty string, e.g. export const NAME = "Investor 8";`);
    }
    this.name = script.NAME;
    this.portfolios = this.checkPortfolios(script.PORTFOLIOS);
    if (typeof script.evaluate !== "function") {
      throw new Unusable(`${file}: no function evaluate(prices); export one that returns { portfolioId: NAV }`);
    }
    this.evaluate = script.evaluate;
  }

  checkPortfolios(portfolios) {
    const file = this.file;
    const shape = "an object of objects, e.g. export const PORTFOLIOS = { 1: { IBM: 1000, AAPL: 1200 } };";
    if (!isTable(portfolios) || entries(portfolios).length === 0) {
      throw new Unusable(`${file}: PORTFOLIOS must be ${shape}`);
    }
    return entries(portfolios).map(([key, holdings]) => {
      const id = portfolioId(key);
      if (id === null || id < 1) {
        throw new Unusable(`${file}: PORTFOLIOS has the key ${JSON.stringify(key)}: portfolio ids are whole numbers >= 1`);
      }
      if (!isTable(holdings) || entries(holdings).length === 0) {
        throw new Unusable(`${file}: PORTFOLIOS[${id}] must be a non-empty object of ticker -> shares`);
      }
      for (const [ticker, shares] of entries(holdings)) {
        if (typeof ticker !== "string" || !isNumber(shares) || !Number.isFinite(shares) || shares < 0) {
          throw new Unusable(
            `${file}: PORTFOLIOS[${id}] holds ${JSON.stringify(ticker)}: ${String(shares)}; holdings are ticker -> shares (a finite number >= 0)`,
          );
        }
      }
      return { id, holdings: entries(holdings).map(([ticker, shares]) => ({ ticker, shares })) };
    });
  }
}

let investor = null;

/** The script of this instance, run on the first call. */
function loaded() {
  if (investor === null) {
    const script = source();
    try {
      investor = new Investor(script.name, script.text);
    } catch (error) {
      const reason = error instanceof Unusable ? error.message : describe(error, script.name);
      unusable(reason);
      throw error;
    }
  }
  return investor;
}

export function name() {
  return loaded().name;
}

export function portfolios() {
  return loaded().portfolios;
}

export function evaluate(quotes) {
  const { file, evaluate: value } = loaded();
  const prices = Object.fromEntries(quotes.map((quote) => [quote.ticker, quote.price]));
  let navs;
  try {
    navs = value(prices);
  } catch (error) {
    throw describe(error, file);
  }
  if (!isTable(navs)) {
    throw `${file}: evaluate returned ${navs === null ? "null" : typeof navs}, not an object of portfolio id -> NAV`;
  }
  return entries(navs).map(([key, nav]) => {
    const id = portfolioId(key);
    if (id === null) {
      throw `${file}: evaluate returned the key ${JSON.stringify(key)}: portfolio ids are whole numbers >= 1`;
    }
    if (!isNumber(nav)) {
      throw `${file}: evaluate returned ${JSON.stringify(nav) ?? String(nav)} for portfolio ${id}: a NAV is a number`;
    }
    return { portfolio: id, nav };
  });
}
