//! `stockd gen-data`: a dataset in the sink's exact layout, for tests and
//! benchmarks. Each portfolio's NAV is a random walk starting near
//! 1,000,000, one row every `step` seconds (20 by default) from `start`,
//! with NAV_Change and NAV_Change_% computed as the investors compute
//! them. The same dataset can be written as an archive instead
//! ([`crate::archive::generate`]): the same rows.

use std::io::Write;
use std::path::Path;

use chrono::NaiveDateTime;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::layout::{HEADER, file_name, names_path, write_row};
use crate::market::{InvestorId, PortfolioId, ValuationView, format_seconds, nav_changes};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Investors 1..=investors.
    pub investors: u32,
    /// Portfolios 1..=portfolios per investor.
    pub portfolios: u32,
    /// Rows per portfolio.
    pub rows: u32,
    /// Time of the first row.
    pub start: NaiveDateTime,
    /// Seed of the random walks.
    pub seed: u64,
    /// Seconds between two rows of a portfolio.
    pub step: i64,
}

/// Seconds between two rows unless asked: the seed's interval.
pub const STEP_SECONDS: i64 = 20;

/// One portfolio's rows, one after the other.
pub struct Walk {
    id: PortfolioId,
    rng: StdRng,
    nav: f64,
    previous: Option<f64>,
    at: NaiveDateTime,
    step: chrono::Duration,
    left: u32,
}

impl Walk {
    /// The walk of `id` in `dataset`.
    pub fn new(dataset: &Dataset, id: PortfolioId) -> Walk {
        let mut rng = StdRng::seed_from_u64(dataset.seed ^ (u64::from(id.investor.get()) << 32 | u64::from(id.number)));
        let nav = rng.random_range(500_000.0..1_500_000.0);
        Walk {
            id,
            rng,
            nav,
            previous: None,
            at: dataset.start,
            step: chrono::Duration::seconds(dataset.step),
            left: dataset.rows,
        }
    }

    /// The time of the next row, `None` after the last.
    pub fn next_at(&self) -> Option<NaiveDateTime> {
        (self.left > 0).then_some(self.at)
    }
}

impl Iterator for Walk {
    type Item = ValuationView<'static>;

    fn next(&mut self) -> Option<ValuationView<'static>> {
        let at = self.next_at()?;
        let (rounded, nav_change, nav_change_pct) = nav_changes(self.nav, self.previous);
        let view = ValuationView {
            portfolio: self.id,
            at,
            timestamp: format_seconds(at).into(),
            nav: rounded,
            nav_change,
            nav_change_pct,
            investor: None,
            interval_ms: None,
        };
        self.previous = Some(rounded);
        self.nav = (self.nav * (1.0 + self.rng.random_range(-0.02..0.02))).max(1.0);
        self.at += self.step;
        self.left -= 1;
        Some(view)
    }
}

/// The dataset's portfolios, by investor then number.
pub fn portfolios(dataset: &Dataset) -> Vec<PortfolioId> {
    (1..=dataset.investors)
        .flat_map(|i| (1..=dataset.portfolios).map(move |p| (i, p)))
        .map(|(i, p)| PortfolioId::new(InvestorId::new(i).expect("from 1"), p).expect("from 1"))
        .collect()
}

/// Writes `.sink/investors.csv`: "Investor N" for each investor.
pub fn write_names(dataset: &Dataset, dir: &Path) -> std::io::Result<()> {
    let mut names = String::from("INVESTOR,NAME\n");
    for investor in 1..=dataset.investors {
        names.push_str(&format!("{investor},Investor {investor}\n"));
    }
    std::fs::create_dir_all(crate::layout::sink_dir(dir))?;
    std::fs::write(names_path(dir), names)
}

/// Writes the dataset into `dir` (created if needed): one file per
/// portfolio and `.sink/investors.csv`. Returns the number of files written.
pub fn generate(dataset: &Dataset, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let ids = portfolios(dataset);
    ids.par_iter().try_for_each(|id| write_portfolio(dataset, dir, *id))?;
    write_names(dataset, dir)?;
    Ok(ids.len())
}

fn write_portfolio(dataset: &Dataset, dir: &Path, id: PortfolioId) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(HEADER.len() + dataset.rows as usize * 48);
    out.extend_from_slice(HEADER);
    for view in Walk::new(dataset, id) {
        write_row(&mut out, &view);
    }
    std::fs::File::create(dir.join(file_name(id)))?.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::parse_timestamp;

    #[test]
    fn writes_the_sink_layout_with_consistent_changes() {
        let dir = tempfile::tempdir().unwrap();
        let dataset = Dataset {
            investors: 2,
            portfolios: 3,
            rows: 5,
            start: parse_timestamp("2026-11-24 09:00").unwrap(),
            seed: 1,
            step: STEP_SECONDS,
        };
        assert_eq!(generate(&dataset, dir.path()).unwrap(), 6);
        let text = std::fs::read_to_string(dir.path().join("INVESTOR_2_PORTFOLIO_3.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%");
        assert_eq!(lines.len(), 6);
        assert!(lines[1].starts_with("2.3,2026-11-24 09:00:00,") && lines[1].ends_with(",0,0"), "{}", lines[1]);
        assert!(lines[5].starts_with("2.3,2026-11-24 09:01:20,"), "{}", lines[5]);
        let fields: Vec<Vec<f64>> =
            lines[1..].iter().map(|l| l.split(',').skip(2).map(|f| f.parse().unwrap()).collect()).collect();
        for pair in fields.windows(2) {
            let change = crate::market::round_cents(pair[1][0] - pair[0][0]);
            assert_eq!(pair[1][1], change);
        }
        let again = tempfile::tempdir().unwrap();
        generate(&dataset, again.path()).unwrap();
        assert_eq!(std::fs::read(again.path().join("INVESTOR_2_PORTFOLIO_3.csv")).unwrap(), text.as_bytes(), "seeded");
        assert_eq!(
            std::fs::read_to_string(names_path(dir.path())).unwrap(),
            "INVESTOR,NAME\n1,Investor 1\n2,Investor 2\n"
        );
    }
}
