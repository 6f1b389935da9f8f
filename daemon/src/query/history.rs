//! The query over the archive (`DATA/archive/`), for a folder whose archive
//! holds every row: the same answers as over the CSV files, reading only
//! the hour partitions the interval touches and, for one portfolio's rows,
//! only the row groups that can hold it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampSecondArray};
use arrow::compute::kernels::partition::partition;
use rayon::prelude::*;

use super::batch::BatchConsumer;
use super::stats::Moments;
use super::trend::{Point, Trend};
use super::{Answer, PortfolioStats, Query, QueryError, RowsConsumer, StatsConsumer, investor_name};
use crate::archive::read::{files, scan};
use crate::market::PortfolioId;

/// One portfolio's summary so far: its moments and its trend, `None` once
/// two of its pieces overlapped in time (then computed from its rows).
#[derive(Clone, Copy)]
struct Summary {
    moments: Moments,
    trend: Option<Trend>,
}

impl Summary {
    fn merge(self, other: Summary) -> Summary {
        let trend = match (self.trend, other.trend) {
            (Some(a), Some(b)) => Trend::join(a, b),
            _ => None,
        };
        Summary { moments: self.moments.merge(other.moments), trend }
    }
}

/// The summary of every portfolio in the batches taken.
#[derive(Default)]
struct Grouped(HashMap<String, Summary>);

impl BatchConsumer for Grouped {
    fn take(&mut self, batch: &RecordBatch) {
        let portfolios = batch.column(0).as_any().downcast_ref::<StringArray>().expect("PORTFOLIO is Utf8");
        let times = batch.column(1).as_any().downcast_ref::<TimestampSecondArray>().expect("TIMESTAMP");
        let navs = batch.column(2).as_any().downcast_ref::<Float64Array>().expect("NAV is Float64");
        let runs = partition(&[batch.column(0).clone()]).expect("one column");
        let mut points = Vec::new();
        for run in runs.ranges() {
            points.clear();
            points.extend(
                times.values()[run.clone()]
                    .iter()
                    .zip(&navs.values()[run.clone()])
                    .map(|(&at, &nav)| Point { at, nav }),
            );
            let summary = Summary {
                moments: Moments::of(&navs.slice(run.start, run.end - run.start)),
                trend: Trend::of(&mut points),
            };
            match self.0.entry(portfolios.value(run.start).to_string()) {
                Entry::Occupied(mut slot) => *slot.get_mut() = slot.get().merge(summary),
                Entry::Vacant(slot) => {
                    slot.insert(summary);
                }
            }
        }
    }
}

impl Grouped {
    fn merge(mut self, other: Grouped) -> Grouped {
        for (portfolio, summary) in other.0 {
            match self.0.entry(portfolio) {
                Entry::Occupied(mut slot) => *slot.get_mut() = slot.get().merge(summary),
                Entry::Vacant(slot) => {
                    slot.insert(summary);
                }
            }
        }
        self
    }
}

/// Times a query is read again when a file it listed was gone when read.
const ATTEMPTS: usize = 5;

/// Answers `query` from the archive. A compaction that swaps an hour
/// between the listing of its files and their reading makes a listed file
/// disappear (never a row appear twice): the query is then read again.
pub fn run(query: &Query) -> Result<Answer, QueryError> {
    let mut attempt = 1;
    loop {
        match answer(query) {
            Err(QueryError::Read { cause, .. })
                if cause.kind() == std::io::ErrorKind::NotFound && attempt < ATTEMPTS =>
            {
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn answer(query: &Query) -> Result<Answer, QueryError> {
    let data = &query.data;
    let folder_error = |cause| QueryError::Folder { data: data.clone(), cause };
    let files = files(data, query.interval).map_err(folder_error)?;
    let read_error = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |cause| QueryError::Read { path, cause }
    };
    let mut answer = Answer::default();
    if let Some(portfolio) = query.portfolio {
        let mut rows = RowsConsumer::default();
        for path in &files {
            scan(path, Some(portfolio), query.interval, &mut rows).map_err(read_error(path))?;
        }
        if rows.rows.is_empty() && !known(query, portfolio) {
            return Err(QueryError::UnknownPortfolio { portfolio, data: data.clone() });
        }
        rows.rows.sort_by_key(|row| row.timestamp);
        answer.rows = rows.rows;
    } else if files.is_empty() && super::files::discover(data).map_err(folder_error)?.is_empty() {
        return Err(QueryError::NoFiles { data: data.clone() });
    }
    if !query.stats {
        return Ok(answer);
    }
    let grouped = files
        .par_iter()
        .map(|path| {
            let mut grouped = Grouped::default();
            scan(path, None, query.interval, &mut grouped).map_err(read_error(path))?;
            Ok(grouped)
        })
        .try_reduce(Grouped::default, |a, b| Ok(a.merge(b)))?;
    let names = crate::layout::load_names(data);
    let mut stats = Vec::with_capacity(grouped.0.len());
    for (portfolio, summary) in grouped.0 {
        let Ok(portfolio) = portfolio.parse::<PortfolioId>() else { continue };
        let trend = match summary.trend {
            Some(trend) => trend,
            None => {
                let mut points: Vec<Point> =
                    points(query, portfolio)?.into_iter().map(|(at, nav)| Point { at, nav }).collect();
                Trend::of(&mut points).expect("a portfolio with rows")
            }
        };
        stats.push(PortfolioStats {
            portfolio,
            name: investor_name(&names, portfolio),
            moments: summary.moments,
            trend,
        });
    }
    stats.sort_by_key(|s| s.portfolio);
    answer.stats = stats;
    Ok(answer)
}

/// Whether the folder knows `portfolio` outside the interval: its CSV file
/// exists (cut back to its header by the CSV window, it still does), or the
/// archive has a row of it.
fn known(query: &Query, portfolio: PortfolioId) -> bool {
    if query.data.join(crate::layout::file_name(portfolio)).is_file() {
        return true;
    }
    let Ok(all) = files(&query.data, super::batch::Interval::default()) else { return false };
    let mut rows = RowsConsumer::default();
    all.iter().any(|path| {
        scan(path, Some(portfolio), super::batch::Interval::default(), &mut rows).is_ok() && !rows.rows.is_empty()
    })
}

/// `portfolio`'s (time, NAV) points in the interval, in time order.
pub fn points(query: &Query, portfolio: PortfolioId) -> Result<Vec<(i64, f64)>, QueryError> {
    let mut points = StatsConsumer::default();
    for path in
        files(&query.data, query.interval).map_err(|cause| QueryError::Folder { data: query.data.clone(), cause })?
    {
        scan(&path, Some(portfolio), query.interval, &mut points)
            .map_err(|cause| QueryError::Read { path: path.clone(), cause })?;
    }
    Ok(points.time_ordered())
}
