//! The query (App2): over the portfolio files of a data folder and a time
//! interval, the rows of one portfolio and, for every portfolio with rows
//! in the interval, its investor's name, row count, average NAV, sample
//! standard deviation and spread, and its return, maximum drawdown and
//! volatility ([`crate::statistics::trend`]) — read and computed with
//! Arrow, files in parallel.

pub mod batch;
pub mod generate;
pub mod history;
pub mod plot;
pub mod report;
pub mod scan;
pub mod strict;

use std::path::PathBuf;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampSecondArray};
use rayon::prelude::*;

use crate::market::PortfolioId;
use crate::statistics::Moments;
use crate::statistics::{Point, Trend};
use batch::{BatchConsumer, Columns, Interval};
use scan::{Skipped, scan};

/// What to answer.
#[derive(Debug, Clone)]
pub struct Query {
    /// The data folder.
    pub data: PathBuf,
    /// The portfolio whose rows to list, if any.
    pub portfolio: Option<PortfolioId>,
    /// The interval, both ends included.
    pub interval: Interval,
    /// Compute the per-portfolio statistics (reads every file).
    pub stats: bool,
}

/// One row of a portfolio file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// PORTFOLIO as written.
    pub portfolio: String,
    /// TIMESTAMP, seconds since the epoch (UTC).
    pub timestamp: i64,
    /// NAV.
    pub nav: f64,
    /// NAV_Change.
    pub nav_change: f64,
    /// NAV_Change_%.
    pub nav_change_pct: f64,
}

/// The statistics of one portfolio over the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioStats {
    /// The portfolio.
    pub portfolio: PortfolioId,
    /// Its investor's name (from `.sink/investors.csv`, else "Investor N").
    pub name: String,
    /// The moments of its NAVs.
    pub moments: Moments,
    /// Its return, drawdown and volatility.
    pub trend: Trend,
}

/// The answer.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The portfolio's rows in time order (empty without a portfolio).
    pub rows: Vec<Row>,
    /// Every portfolio with rows in the interval, by investor then
    /// portfolio number.
    pub stats: Vec<PortfolioStats>,
    /// Corrupt rows skipped.
    pub skipped_rows: u64,
    /// What was skipped, file and line.
    pub warnings: Vec<String>,
}

/// Why there is no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The data folder does not exist or cannot be read.
    #[error("cannot read the data folder {}: {cause}", data.display())]
    Folder {
        /// The folder.
        data: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// It holds no portfolio file.
    #[error("no portfolio files (INVESTOR_i_PORTFOLIO_p.csv) in {}", data.display())]
    NoFiles {
        /// The folder.
        data: PathBuf,
    },
    /// The portfolio has no file.
    #[error("no portfolio {portfolio} in {} (no INVESTOR_{}_PORTFOLIO_{}.csv)", data.display(), portfolio.investor, portfolio.number)]
    UnknownPortfolio {
        /// The portfolio asked for.
        portfolio: PortfolioId,
        /// The folder.
        data: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

/// Accumulates the moments of the NAV column and the (time, NAV) points
/// for the trend.
#[derive(Default)]
struct StatsConsumer {
    moments: Moments,
    points: Vec<Point>,
}

impl BatchConsumer for StatsConsumer {
    fn take(&mut self, batch: &RecordBatch) {
        let schema = batch.schema();
        let column = |name: &str| batch.column(schema.index_of(name).expect("always read")).as_any();
        let timestamps = column("TIMESTAMP").downcast_ref::<TimestampSecondArray>().expect("timestamps");
        let navs = column("NAV").downcast_ref::<Float64Array>().expect("NAV is Float64");
        self.moments = self.moments.merge(Moments::of(navs));
        self.points.extend(timestamps.values().iter().zip(navs.values()).map(|(&at, &nav)| Point { at, nav }));
    }
}

impl StatsConsumer {
    /// The (time, NAV) points in time order.
    fn time_ordered(mut self) -> Vec<(i64, f64)> {
        self.points.sort_by_key(|p| p.at);
        self.points.into_iter().map(|p| (p.at, p.nav)).collect()
    }

    /// The moments and the trend, `None` without rows.
    fn finish(mut self) -> Option<(Moments, Trend)> {
        Some((self.moments, Trend::of(&mut self.points)?))
    }
}

/// Collects whole rows (and their moments).
#[derive(Default)]
pub(crate) struct RowsConsumer {
    pub(crate) rows: Vec<Row>,
    moments: Moments,
}

impl BatchConsumer for RowsConsumer {
    fn take(&mut self, batch: &RecordBatch) {
        let column = |i: usize| batch.column(i).as_any();
        let portfolio = column(0).downcast_ref::<StringArray>().expect("PORTFOLIO is Utf8");
        let timestamp = column(1).downcast_ref::<TimestampSecondArray>().expect("TIMESTAMP is a timestamp");
        let [nav, change, pct] =
            [2, 3, 4].map(|i| column(i).downcast_ref::<Float64Array>().expect("numbers are Float64"));
        self.moments = self.moments.merge(Moments::of(nav));
        self.rows.extend((0..batch.num_rows()).map(|i| Row {
            portfolio: portfolio.value(i).to_string(),
            timestamp: timestamp.value(i),
            nav: nav.value(i),
            nav_change: change.value(i),
            nav_change_pct: pct.value(i),
        }));
    }
}

/// Answers `query`: from the archive when it holds every row (see
/// [`crate::archive::is_complete`]), else from the CSV files.
pub fn run(query: &Query) -> Result<Answer, QueryError> {
    if crate::archive::is_complete(&query.data) {
        return history::run(query);
    }
    let data = &query.data;
    // Every file is listed only when every portfolio is asked: one
    // portfolio's rows open its file by name (a million names take seconds
    // to list).
    let list_files = || {
        let files = crate::layout::portfolio_files(data)
            .map_err(|source| QueryError::Folder { data: data.clone(), cause: source })?;
        if files.is_empty() && query.portfolio.is_none() {
            return Err(QueryError::NoFiles { data: data.clone() });
        }
        Ok(files)
    };
    let mut answer = Answer::default();
    let selected = match query.portfolio {
        Some(portfolio) => {
            let path = data.join(crate::layout::file_name(portfolio));
            if !path.is_file() {
                // The folder itself may be what is missing: say that.
                std::fs::read_dir(data).map_err(|source| QueryError::Folder { data: data.clone(), cause: source })?;
                return Err(QueryError::UnknownPortfolio { portfolio, data: data.clone() });
            }
            let (rows, skipped) = scan(&path, Columns::All, query.interval, RowsConsumer::default)
                .map_err(|source| QueryError::Read { path: path.clone(), cause: source })?;
            let mut rows_consumer = rows;
            rows_consumer.rows.sort_by_key(|row| row.timestamp);
            let trend = Trend::of(&mut points_of(&rows_consumer.rows));
            answer.rows = rows_consumer.rows;
            note(&mut answer, skipped);
            trend.map(|trend| (portfolio, (rows_consumer.moments, trend)))
        }
        None => None,
    };
    if !query.stats {
        if query.portfolio.is_none() {
            list_files()?;
        }
        return Ok(answer);
    }
    let files = list_files()?;
    let asked = query.portfolio;
    let others: Vec<_> = files.iter().filter(|(id, _)| Some(*id) != asked).collect();
    let scanned = others
        .par_iter()
        .map(|(id, path)| {
            let (consumer, skipped) = scan(path, Columns::Stats, query.interval, StatsConsumer::default)
                .map_err(|source| QueryError::Read { path: path.clone(), cause: source })?;
            Ok((*id, consumer.finish(), skipped))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let names = crate::layout::load_names(data);
    let mut summaries: Vec<(PortfolioId, (Moments, Trend))> = selected.into_iter().collect();
    for (id, summary, skipped) in scanned {
        note(&mut answer, skipped);
        summaries.extend(summary.map(|summary| (id, summary)));
    }
    summaries.sort_by_key(|(id, _)| *id);
    answer.stats = summaries
        .into_iter()
        .map(|(portfolio, (moments, trend))| PortfolioStats {
            portfolio,
            name: investor_name(&names, portfolio),
            moments,
            trend,
        })
        .collect();
    Ok(answer)
}

/// The investor's name from `.sink/investors.csv`, else "Investor N".
pub fn investor_name(
    names: &std::collections::BTreeMap<crate::market::InvestorId, String>,
    portfolio: PortfolioId,
) -> String {
    names.get(&portfolio.investor).cloned().unwrap_or_else(|| format!("Investor {}", portfolio.investor))
}

/// The (time, NAV) points of `rows`.
pub fn points_of(rows: &[Row]) -> Vec<Point> {
    rows.iter().map(|row| Point { at: row.timestamp, nav: row.nav }).collect()
}

fn note(answer: &mut Answer, skipped: Skipped) {
    answer.skipped_rows += skipped.rows;
    answer.warnings.extend(skipped.warnings);
}

/// The lines to plot: the asked portfolio's, or those of the first
/// `limit` portfolios with rows in the interval; each thinned to at most
/// [`plot::MAX_POINTS`] points and labelled "name · N.P".
pub fn plot_series(query: &Query, answer: &Answer, limit: usize) -> Result<Vec<plot::Series>, QueryError> {
    let label = |id: PortfolioId, name: &str| format!("{name} · {id}");
    let names = crate::layout::load_names(&query.data);
    let mut series = Vec::new();
    if let Some(portfolio) = query.portfolio {
        let mut points: Vec<(i64, f64)> = answer.rows.iter().map(|r| (r.timestamp, r.nav)).collect();
        plot::thin(&mut points);
        series.push((label(portfolio, &investor_name(&names, portfolio)), points));
        return Ok(series);
    }
    let archived = crate::archive::is_complete(&query.data);
    for stats in answer.stats.iter().take(limit) {
        if archived {
            let mut points = history::points(query, stats.portfolio)?;
            plot::thin(&mut points);
            series.push((label(stats.portfolio, &stats.name), points));
            continue;
        }
        let path = query.data.join(crate::layout::file_name(stats.portfolio));
        let (consumer, _) = scan(&path, Columns::Stats, query.interval, StatsConsumer::default)
            .map_err(|source| QueryError::Read { path: path.clone(), cause: source })?;
        let mut points = consumer.time_ordered();
        plot::thin(&mut points);
        series.push((label(stats.portfolio, &stats.name), points));
    }
    Ok(series)
}
