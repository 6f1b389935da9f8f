//! `stockd bench web`: what keeping the web view current costs the server
//! at scale. Per interval: decoding N valuation messages (what any reader,
//! the sink included, pays: the baseline) against decoding and applying
//! them to the view's board; then the cost of a page request for each
//! sort, with and without a filter; and the board's memory.

use std::time::{Duration, Instant};

use crate::market::{InvestorId, PortfolioId, Valuation, ValuationView};
use crate::web::board::{Board, PageRequest, SortKey};

/// The benchmark's shape.
#[derive(Debug, Clone)]
pub struct WebBench {
    /// Investors; each has `portfolios` portfolios.
    pub investors: u32,
    /// Portfolios per investor.
    pub portfolios: u32,
    /// Intervals applied (each one valuation per portfolio).
    pub intervals: u32,
}

/// One interval's cost.
#[derive(Debug, Clone)]
pub struct IntervalCost {
    /// Decoding every message only (the baseline).
    pub decode: Duration,
    /// Decoding and applying to the board.
    pub apply: Duration,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct WebReport {
    /// Portfolios on the board.
    pub portfolios: usize,
    /// Per interval.
    pub intervals: Vec<IntervalCost>,
    /// The median of 20 page requests (50 rows), by label.
    pub pages: Vec<(String, Duration)>,
    /// RSS before and after filling the board.
    pub rss: (u64, u64),
}

/// Runs the benchmark.
pub fn run(bench: &WebBench) -> WebReport {
    let rss_before = super::rss_bytes().unwrap_or(0);
    let mut board = Board::default();
    let mut intervals = Vec::new();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(9, 40, 0).unwrap();
    for k in 0..bench.intervals {
        let at = start + chrono::Duration::seconds(20 * i64::from(k));
        let messages = messages(bench, at, k);
        // As the feed does: decode without allocating, then apply.
        let started = Instant::now();
        let decoded = messages.iter().filter_map(|m| ValuationView::decode(m)).count();
        let decode = started.elapsed();
        assert_eq!(decoded, messages.len());
        let started = Instant::now();
        let views: Vec<ValuationView<'_>> = messages.iter().filter_map(|m| ValuationView::decode(m)).collect();
        views.iter().for_each(|view| board.apply_view(view));
        intervals.push(IntervalCost { decode, apply: started.elapsed() });
    }
    let rss_after = super::rss_bytes().unwrap_or(0);
    let mut pages = Vec::new();
    for (label, sort, descending, filter) in [
        ("by portfolio, first page", SortKey::Portfolio, false, ""),
        ("by NAV, descending", SortKey::Nav, true, ""),
        ("top movers", SortKey::Movers, true, ""),
        ("filter \"investor 42\"", SortKey::Portfolio, false, "investor 42"),
        ("filter \"7.\" (an id prefix)", SortKey::Portfolio, false, "7."),
    ] {
        let request = PageRequest { sort, descending, filter: filter.to_string(), offset: 0, limit: 50 };
        let mut times: Vec<Duration> = (0..20)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(board.page(&request));
                started.elapsed()
            })
            .collect();
        times.sort();
        pages.push((label.to_string(), times[times.len() / 2]));
    }
    WebReport { portfolios: board.len(), intervals, pages, rss: (rss_before, rss_after) }
}

/// One interval's valuation messages, as investors publish them.
fn messages(bench: &WebBench, at: chrono::NaiveDateTime, k: u32) -> Vec<Vec<u8>> {
    let mut messages = Vec::with_capacity((bench.investors * bench.portfolios) as usize);
    for investor in 1..=bench.investors {
        let id = InvestorId::new(investor).expect("investor ids start at 1");
        let name = format!("Investor {investor}");
        for number in 1..=bench.portfolios {
            let portfolio = PortfolioId { investor: id, number };
            let nav = 1_000_000.0 + f64::from((investor * 7919 + number * 104_729 + k * 31) % 100_000);
            let previous = (k > 0).then_some(nav - 100.0);
            messages.push(Valuation::new(portfolio, at, nav, previous, Some(name.clone())).encode());
        }
    }
    messages
}
