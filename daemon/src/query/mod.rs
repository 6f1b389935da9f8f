//! The query (App2): over the portfolio files of a data folder and a time
//! interval, the rows of one portfolio and, for every portfolio with rows
//! in the interval, its investor's name, row count, average NAV, sample
//! standard deviation and spread — read and computed with Arrow, files in
//! parallel, memory bounded by the batch size.

pub mod batch;
pub mod files;
pub mod generate;
pub mod history;
pub mod plot;
pub mod report;
pub mod scan;
pub mod stats;
pub mod strict;

use std::path::PathBuf;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampSecondArray};
use rayon::prelude::*;

use crate::market::PortfolioId;
use batch::{BatchConsumer, Columns, Interval};
use scan::{Skipped, scan};
use stats::Moments;

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

/// Accumulates the moments of the NAV column.
#[derive(Default)]
struct StatsConsumer(Moments);

impl BatchConsumer for StatsConsumer {
    fn take(&mut self, batch: &RecordBatch) {
        let index = batch.schema().index_of("NAV").expect("NAV is always read");
        let navs = batch.column(index).as_any().downcast_ref::<Float64Array>().expect("NAV is Float64");
        self.0 = self.0.merge(Moments::of(navs));
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
    let folder_error = |source| QueryError::Folder { data: data.clone(), cause: source };
    let files = files::discover(data).map_err(folder_error)?;
    let mut answer = Answer::default();
    let selected = match query.portfolio {
        Some(portfolio) => {
            let path = data.join(crate::layout::file_name(portfolio));
            if !path.is_file() {
                return Err(QueryError::UnknownPortfolio { portfolio, data: data.clone() });
            }
            let (rows, skipped) = scan(&path, Columns::All, query.interval, RowsConsumer::default)
                .map_err(|source| QueryError::Read { path: path.clone(), cause: source })?;
            let mut rows_consumer = rows;
            rows_consumer.rows.sort_by_key(|row| row.timestamp);
            answer.rows = rows_consumer.rows;
            note(&mut answer, skipped);
            Some((portfolio, rows_consumer.moments))
        }
        None if files.is_empty() => return Err(QueryError::NoFiles { data: data.clone() }),
        None => None,
    };
    if !query.stats {
        return Ok(answer);
    }
    let others: Vec<_> = files.iter().filter(|(id, _)| Some(*id) != selected.map(|s| s.0)).collect();
    let scanned: Vec<Result<(PortfolioId, Moments, Skipped), QueryError>> = others
        .par_iter()
        .map(|(id, path)| {
            let (consumer, skipped) = scan(path, Columns::Stats, query.interval, StatsConsumer::default)
                .map_err(|source| QueryError::Read { path: path.clone(), cause: source })?;
            Ok((*id, consumer.0, skipped))
        })
        .collect();
    let names = crate::layout::load_names(data);
    let mut moments: Vec<(PortfolioId, Moments)> = selected.into_iter().collect();
    for result in scanned {
        let (id, m, skipped) = result?;
        note(&mut answer, skipped);
        moments.push((id, m));
    }
    moments.sort_by_key(|(id, _)| *id);
    answer.stats = moments
        .into_iter()
        .filter(|(_, m)| m.count > 0)
        .map(|(portfolio, moments)| PortfolioStats {
            portfolio,
            name: names.get(&portfolio.investor).cloned().unwrap_or_else(|| format!("Investor {}", portfolio.investor)),
            moments,
        })
        .collect();
    Ok(answer)
}

fn note(answer: &mut Answer, skipped: Skipped) {
    answer.skipped_rows += skipped.rows;
    answer.warnings.extend(skipped.warnings);
}

/// Collects (time, NAV) points.
#[derive(Default)]
struct PointsConsumer(Vec<(i64, f64)>);

impl BatchConsumer for PointsConsumer {
    fn take(&mut self, batch: &RecordBatch) {
        let schema = batch.schema();
        let column = |name: &str| batch.column(schema.index_of(name).expect("always read")).as_any();
        let timestamps = column("TIMESTAMP").downcast_ref::<TimestampSecondArray>().expect("timestamps");
        let navs = column("NAV").downcast_ref::<Float64Array>().expect("NAVs");
        self.0.extend(timestamps.values().iter().copied().zip(navs.values().iter().copied()));
    }
}

/// The lines to plot: the asked portfolio's, or those of the first
/// `limit` portfolios with rows in the interval; each thinned to at most
/// [`plot::MAX_POINTS`] points and labelled "name · N.P".
pub fn plot_series(query: &Query, answer: &Answer, limit: usize) -> Result<Vec<plot::Series>, QueryError> {
    let label = |id: PortfolioId, name: &str| format!("{name} · {id}");
    let names = crate::layout::load_names(&query.data);
    let name_of =
        |id: PortfolioId| names.get(&id.investor).cloned().unwrap_or_else(|| format!("Investor {}", id.investor));
    let mut series = Vec::new();
    if let Some(portfolio) = query.portfolio {
        let mut points: Vec<(i64, f64)> = answer.rows.iter().map(|r| (r.timestamp, r.nav)).collect();
        plot::thin(&mut points);
        series.push((label(portfolio, &name_of(portfolio)), points));
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
        let (mut points, _) = scan(&path, Columns::Stats, query.interval, PointsConsumer::default)
            .map_err(|source| QueryError::Read { path: path.clone(), cause: source })?;
        points.0.sort_by_key(|p| p.0);
        plot::thin(&mut points.0);
        series.push((label(stats.portfolio, &stats.name), points.0));
    }
    Ok(series)
}
