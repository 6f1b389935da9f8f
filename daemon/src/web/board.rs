//! What the web view shows, kept current from the bus: the latest valuation
//! of every portfolio with a short history, and the latest price of every
//! ticker. Paging, sorting and filtering happen here, so a browser never
//! receives more than a page.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use std::fmt::Write as _;

use chrono::NaiveDateTime;

use crate::market::{InvestorId, PortfolioId, Tick, Valuation, ValuationView};

/// NAVs kept per portfolio for its sparkline.
pub const SPARK_POINTS: usize = 20;

/// The latest valuation of one portfolio and the NAVs before it.
#[derive(Debug, Clone, Serialize)]
pub struct PortfolioEntry {
    /// `N.P`.
    #[serde(serialize_with = "as_text")]
    pub portfolio: PortfolioId,
    /// The investor's display name (plugin-controlled: render as text).
    pub investor: String,
    /// When it was last valued (UTC), served as `YYYY-MM-DD HH:MM:SS`.
    #[serde(serialize_with = "as_timestamp")]
    pub timestamp: NaiveDateTime,
    /// NAV.
    pub nav: f64,
    /// NAV_Change.
    pub nav_change: f64,
    /// NAV_Change_%.
    pub nav_change_pct: f64,
    /// The last NAVs, oldest first, the latest included.
    pub spark: VecDeque<f64>,
}

fn as_text<S: serde::Serializer>(id: &PortfolioId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

fn as_timestamp<S: serde::Serializer>(at: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&at.format("%Y-%m-%d %H:%M:%S"))
}

/// A column to sort the portfolios by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// By investor, then portfolio number.
    Portfolio,
    /// By investor name.
    Investor,
    /// By NAV.
    Nav,
    /// By NAV_Change.
    NavChange,
    /// By NAV_Change_%.
    NavChangePct,
    /// By |NAV_Change_%|, largest first: the top movers.
    Movers,
}

/// What page of the portfolios to return.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// The sort column.
    pub sort: SortKey,
    /// Descending order (movers are always largest first).
    pub descending: bool,
    /// Keep only portfolios whose id (`N.P`) starts with, or whose investor
    /// name contains, this text (case-insensitive); empty keeps all.
    pub filter: String,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return.
    pub limit: usize,
}

/// One page of portfolios.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// Portfolios matching the filter.
    pub total: usize,
    /// The rows skipped before this page.
    pub offset: usize,
    /// This page.
    pub rows: Vec<PortfolioEntry>,
}

/// The latest trade of one ticker.
#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    /// The ticker.
    pub ticker: String,
    /// The latest price.
    pub price: f64,
    /// When it traded, `YYYY-MM-DD HH:MM:SS` UTC.
    pub at: String,
}

/// The view's state.
#[derive(Debug, Default)]
pub struct Board {
    portfolios: HashMap<PortfolioId, PortfolioEntry>,
    market: BTreeMap<String, Quote>,
}

impl Board {
    /// Takes a valuation: it becomes its portfolio's latest unless an older
    /// one (by timestamp) arrives late.
    pub fn apply_valuation(&mut self, valuation: Valuation) {
        let Valuation { portfolio, at, nav, nav_change, nav_change_pct, investor, .. } = valuation;
        self.apply(portfolio, at, [nav, nav_change, nav_change_pct], investor.as_deref());
    }

    /// Like [`apply_valuation`](Self::apply_valuation) for a message read
    /// without allocating (the live feed's path).
    pub fn apply_view(&mut self, valuation: &ValuationView<'_>) {
        let numbers = [valuation.nav, valuation.nav_change, valuation.nav_change_pct];
        self.apply(valuation.portfolio, valuation.at, numbers, valuation.investor.as_deref());
    }

    /// `numbers`: NAV, NAV_Change, NAV_Change_%.
    fn apply(&mut self, portfolio: PortfolioId, at: NaiveDateTime, numbers: [f64; 3], investor: Option<&str>) {
        let [nav, nav_change, nav_change_pct] = numbers;
        let entry = self.portfolios.entry(portfolio).or_insert_with(|| PortfolioEntry {
            portfolio,
            investor: String::new(),
            timestamp: at,
            nav,
            nav_change,
            nav_change_pct,
            spark: VecDeque::with_capacity(SPARK_POINTS),
        });
        if at < entry.timestamp {
            return;
        }
        match investor {
            Some(name) if name != entry.investor => entry.investor = name.to_string(),
            Some(_) => {}
            None if entry.investor.is_empty() => entry.investor = format!("Investor {}", portfolio.investor),
            None => {}
        }
        entry.timestamp = at;
        entry.nav = nav;
        entry.nav_change = nav_change;
        entry.nav_change_pct = nav_change_pct;
        if entry.spark.len() == SPARK_POINTS {
            entry.spark.pop_front();
        }
        entry.spark.push_back(nav);
    }

    /// Adds the portfolios of `older` this board does not know yet (the last
    /// rows of the files, read while the bus already fed this board).
    pub fn fill_from(&mut self, older: Board) {
        for (id, entry) in older.portfolios {
            self.portfolios.entry(id).or_insert(entry);
        }
    }

    /// Takes a trade.
    pub fn apply_tick(&mut self, tick: &Tick) {
        let quote =
            Quote { ticker: tick.ticker.clone(), price: tick.price, at: crate::market::format_seconds(tick.at) };
        self.market.insert(tick.ticker.clone(), quote);
    }

    /// Portfolios known.
    pub fn len(&self) -> usize {
        self.portfolios.len()
    }

    /// Whether no portfolio is known yet.
    pub fn is_empty(&self) -> bool {
        self.portfolios.is_empty()
    }

    /// One portfolio's latest entry.
    pub fn portfolio(&self, id: PortfolioId) -> Option<&PortfolioEntry> {
        self.portfolios.get(&id)
    }

    /// The latest price of every ticker, by ticker.
    pub fn market(&self) -> Vec<Quote> {
        self.market.values().cloned().collect()
    }

    /// A page of portfolios: filtered, sorted, then cut. Cost: one pass over
    /// the portfolios and a partial sort of the matches up to the page.
    pub fn page(&self, request: &PageRequest) -> Page {
        let needle = request.filter.to_lowercase();
        // Names are per investor: whether one matches is decided once per
        // investor, not once per portfolio.
        let mut name_matches: HashMap<InvestorId, bool> = HashMap::new();
        let mut id_text = String::new();
        let mut matches: Vec<(&PortfolioId, &PortfolioEntry)> = self
            .portfolios
            .iter()
            .filter(|(id, entry)| {
                if needle.is_empty() {
                    return true;
                }
                id_text.clear();
                let _ = write!(id_text, "{id}");
                id_text.starts_with(&needle)
                    || *name_matches
                        .entry(id.investor)
                        .or_insert_with(|| entry.investor.to_lowercase().contains(&needle))
            })
            .collect();
        let total = matches.len();
        let order = |a: &(&PortfolioId, &PortfolioEntry), b: &(&PortfolioId, &PortfolioEntry)| {
            let (a_id, a) = a;
            let (b_id, b) = b;
            let by_key = match request.sort {
                SortKey::Portfolio => a_id.cmp(b_id),
                SortKey::Investor => a.investor.cmp(&b.investor),
                SortKey::Nav => a.nav.total_cmp(&b.nav),
                SortKey::NavChange => a.nav_change.total_cmp(&b.nav_change),
                SortKey::NavChangePct => a.nav_change_pct.total_cmp(&b.nav_change_pct),
                SortKey::Movers => b.nav_change_pct.abs().total_cmp(&a.nav_change_pct.abs()),
            };
            let by_key = if request.descending && request.sort != SortKey::Movers { by_key.reverse() } else { by_key };
            by_key.then_with(|| a_id.cmp(b_id))
        };
        let end = request.offset.saturating_add(request.limit).min(total);
        if end < total && end > 0 {
            matches.select_nth_unstable_by(end - 1, order);
            matches.truncate(end);
        }
        matches.sort_unstable_by(order);
        let rows = matches.into_iter().skip(request.offset).map(|(_, entry)| entry.clone()).collect();
        Page { total, offset: request.offset, rows }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valuation(investor: u32, number: u32, seconds: u32, nav: f64, pct: f64) -> Valuation {
        Valuation {
            portfolio: PortfolioId { investor: InvestorId::new(investor).unwrap(), number },
            at: chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(9, 40, seconds).unwrap(),
            nav,
            nav_change: 0.0,
            nav_change_pct: pct,
            investor: Some(format!("Investor {investor}")),
            interval_ms: None,
        }
    }

    fn request(sort: SortKey, descending: bool, filter: &str, offset: usize, limit: usize) -> PageRequest {
        PageRequest { sort, descending, filter: filter.to_string(), offset, limit }
    }

    fn ids(page: &Page) -> Vec<String> {
        page.rows.iter().map(|r| r.portfolio.to_string()).collect()
    }

    #[test]
    fn the_latest_valuation_wins_and_the_sparkline_keeps_the_last_points() {
        let mut board = Board::default();
        for second in 0..25 {
            board.apply_valuation(valuation(1, 1, second, f64::from(second), 0.0));
        }
        board.apply_valuation(valuation(1, 1, 3, 999.0, 0.0));
        let entry = board.portfolio(PortfolioId::new(InvestorId::new(1).unwrap(), 1).unwrap()).unwrap();
        assert_eq!(entry.nav, 24.0, "a late older valuation does not win");
        assert_eq!(entry.spark.len(), SPARK_POINTS);
        assert_eq!(entry.spark.front(), Some(&5.0));
        assert_eq!(serde_json::to_value(entry).unwrap()["timestamp"], "2026-11-24 09:40:24");
        assert_eq!(serde_json::to_value(entry).unwrap()["portfolio"], "1.1");
    }

    #[test]
    fn pages_sort_filter_and_cut_on_the_server() {
        let mut board = Board::default();
        for investor in 1..=12 {
            for number in 1..=2 {
                let nav = f64::from(investor * 10 + number);
                board.apply_valuation(valuation(
                    investor,
                    number,
                    0,
                    nav,
                    f64::from(number) - 1.5 * f64::from(investor % 3),
                ));
            }
        }
        let first = board.page(&request(SortKey::Portfolio, false, "", 0, 3));
        assert_eq!(first.total, 24);
        assert_eq!(ids(&first), ["1.1", "1.2", "2.1"]);
        let second = board.page(&request(SortKey::Portfolio, false, "", 3, 3));
        assert_eq!(ids(&second), ["2.2", "3.1", "3.2"]);
        let richest = board.page(&request(SortKey::Nav, true, "", 0, 2));
        assert_eq!(ids(&richest), ["12.2", "12.1"]);
        let filtered = board.page(&request(SortKey::Portfolio, false, "1", 0, 100));
        assert_eq!(ids(&filtered), ["1.1", "1.2", "10.1", "10.2", "11.1", "11.2", "12.1", "12.2"]);
        let by_name = board.page(&request(SortKey::Portfolio, false, "investor 7", 0, 100));
        assert_eq!(ids(&by_name), ["7.1", "7.2"]);
        let movers = board.page(&request(SortKey::Movers, false, "", 0, 1));
        let biggest = board.page(&request(SortKey::Portfolio, false, "", 0, 100));
        let max = biggest.rows.iter().map(|r| r.nav_change_pct.abs()).fold(0.0, f64::max);
        assert_eq!(movers.rows[0].nav_change_pct.abs(), max);
        let past_the_end = board.page(&request(SortKey::Nav, false, "", 30, 10));
        assert_eq!((past_the_end.total, past_the_end.rows.len()), (24, 0));
    }
}
