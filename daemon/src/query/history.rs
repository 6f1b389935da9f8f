//! The query over the archive (`DATA/archive/`), for a folder whose archive
//! holds every row: the same answers as over the CSV files, reading only
//! the hour partitions the interval touches and, for one portfolio's rows,
//! only the row groups that can hold it.

use std::collections::HashMap;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray};
use arrow::compute::kernels::partition::partition;
use rayon::prelude::*;

use super::batch::BatchConsumer;
use super::stats::Moments;
use super::{Answer, PointsConsumer, PortfolioStats, Query, QueryError, RowsConsumer};
use crate::archive::read::{files, scan};
use crate::market::PortfolioId;

/// The moments of every portfolio in the batches taken.
#[derive(Default)]
struct GroupedMoments(HashMap<String, Moments>);

impl BatchConsumer for GroupedMoments {
    fn take(&mut self, batch: &RecordBatch) {
        let portfolios = batch.column(0).as_any().downcast_ref::<StringArray>().expect("PORTFOLIO is Utf8");
        let navs = batch.column(2).as_any().downcast_ref::<Float64Array>().expect("NAV is Float64");
        let runs = partition(&[batch.column(0).clone()]).expect("one column");
        for run in runs.ranges() {
            let moments = Moments::of(&navs.slice(run.start, run.end - run.start));
            let slot = self.0.entry(portfolios.value(run.start).to_string()).or_default();
            *slot = slot.merge(moments);
        }
    }
}

impl GroupedMoments {
    fn merge(mut self, other: GroupedMoments) -> GroupedMoments {
        for (portfolio, moments) in other.0 {
            let slot = self.0.entry(portfolio).or_default();
            *slot = slot.merge(moments);
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
            let mut grouped = GroupedMoments::default();
            scan(path, None, query.interval, &mut grouped).map_err(read_error(path))?;
            Ok(grouped)
        })
        .try_reduce(GroupedMoments::default, |a, b| Ok(a.merge(b)))?;
    let names = crate::layout::load_names(data);
    let mut stats: Vec<PortfolioStats> = grouped
        .0
        .into_iter()
        .filter(|(_, moments)| moments.count > 0)
        .filter_map(|(portfolio, moments)| {
            let portfolio: PortfolioId = portfolio.parse().ok()?;
            let name =
                names.get(&portfolio.investor).cloned().unwrap_or_else(|| format!("Investor {}", portfolio.investor));
            Some(PortfolioStats { portfolio, name, moments })
        })
        .collect();
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
    let mut points = PointsConsumer::default();
    for path in
        files(&query.data, query.interval).map_err(|cause| QueryError::Folder { data: query.data.clone(), cause })?
    {
        scan(&path, Some(portfolio), query.interval, &mut points)
            .map_err(|cause| QueryError::Read { path: path.clone(), cause })?;
    }
    points.0.sort_by_key(|p| p.0);
    Ok(points.0)
}
