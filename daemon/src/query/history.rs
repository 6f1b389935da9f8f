//! The query over the archive (`DATA/archive/`), for a folder whose archive
//! holds every row: the same answers as over the CSV files, reading only
//! the hour partitions the interval touches: for the statistics, the
//! summary of every hour the interval covers whole (see
//! [`crate::archive::summary`]) and the rows of the hours at its edges
//! (and of hours without a current summary); for one portfolio's rows,
//! only the row groups that can hold it.

use std::path::PathBuf;

use rayon::prelude::*;

use super::{Answer, PortfolioStats, Query, QueryError, RowsConsumer, StatsConsumer, investor_name};
use crate::archive::read::{files, scan};
use crate::archive::read::{hour_dirs, parquet_names};
use crate::archive::summary::{self, Grouped};
use crate::market::PortfolioId;

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
        // Per file, the footer, the page index and a page per column: on
        // all cores.
        let mut rows = files
            .par_iter()
            .map(|path| {
                let mut rows = RowsConsumer::default();
                scan(path, Some(portfolio), query.interval, &mut rows).map_err(read_error(path))?;
                Ok(rows.rows)
            })
            .try_reduce(Vec::new, |mut a, b| {
                a.extend(b);
                Ok(a)
            })?;
        if rows.is_empty() && !known(query, portfolio) {
            return Err(QueryError::UnknownPortfolio { portfolio, data: data.clone() });
        }
        rows.sort_by_key(|row| row.timestamp);
        answer.rows = rows;
    } else if files.is_empty() && crate::layout::portfolio_files(data).map_err(folder_error)?.is_empty() {
        return Err(QueryError::NoFiles { data: data.clone() });
    }
    if !query.stats {
        return Ok(answer);
    }
    // One list per thread, each source merged into it as it is read (a
    // list per source would be allocated and copied once per hour).
    let sources = sources(query)?;
    let per_thread = sources.len().div_ceil(rayon::current_num_threads()).max(1);
    let lists = sources
        .par_chunks(per_thread)
        .map(|sources| {
            let (mut merged, mut grouped) = (Vec::new(), Grouped::default());
            for source in sources {
                match source {
                    Source::Summary(path) => summary::read_into(path, &mut merged).map_err(read_error(path))?,
                    Source::Rows(path) => grouped.scan(path, query.interval).map_err(read_error(path))?,
                }
            }
            Ok(summary::merge_sorted(merged, grouped.into_sorted()))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let names = crate::layout::load_names(data);
    let mut stats = Vec::with_capacity(lists.iter().map(Vec::len).max().unwrap_or(0));
    for (portfolio, summary) in summary::merge_lists(lists) {
        let trend = match summary.trend {
            Some(trend) => trend,
            None => rows_of(query, portfolio)?.finish().expect("a portfolio with rows").1,
        };
        stats.push(PortfolioStats {
            portfolio,
            name: investor_name(&names, portfolio),
            moments: summary.moments,
            trend,
        });
    }
    answer.stats = stats;
    Ok(answer)
}

/// Where the statistics of an hour come from.
enum Source {
    /// A day's or an hour's summary: the interval covers it whole and it is
    /// current.
    Summary(PathBuf),
    /// One of the hour's files, read row by row.
    Rows(PathBuf),
}

/// An hour folder: its start, its path and its files' names.
type HourFiles = (i64, PathBuf, Vec<String>);

/// The sources of the statistics over `query`'s interval: the summary of
/// every day the interval covers whole that has a current one, else the
/// summary of every hour it covers whole that has a current one, else the
/// hour's files.
fn sources(query: &Query) -> Result<Vec<Source>, QueryError> {
    let (data, interval) = (&query.data, query.interval);
    let folder_error = |cause| QueryError::Folder { data: data.clone(), cause };
    let covers =
        |start: i64, end: i64| interval.from.is_none_or(|from| from <= start) && interval.to.is_none_or(|to| end <= to);
    let mut days: Vec<(i64, Vec<HourFiles>)> = Vec::new();
    for (start, dir) in hour_dirs(&data.join(crate::archive::DIR)).map_err(folder_error)? {
        let end = start + crate::archive::HOUR - 1;
        if interval.from.is_some_and(|from| end < from) || interval.to.is_some_and(|to| start > to) {
            continue;
        }
        let names = parquet_names(&dir).map_err(folder_error)?;
        let day = start.div_euclid(summary::DAY) * summary::DAY;
        match days.last_mut() {
            Some((last, hours)) if *last == day => hours.push((start, dir, names)),
            _ => days.push((day, vec![(start, dir, names)])),
        }
    }
    let mut sources = Vec::new();
    for (day, hours) in days {
        if covers(day, day + summary::DAY - 1) {
            let listings: Vec<(i64, Vec<String>)> =
                hours.iter().map(|(start, _, names)| (*start, names.clone())).collect();
            if let Some(path) = summary::usable_day(data, day, &summary::day_sources(&listings)) {
                sources.push(Source::Summary(path));
                continue;
            }
        }
        for (start, dir, names) in hours {
            let whole = covers(start, start + crate::archive::HOUR - 1);
            match whole.then(|| summary::usable(data, start, &names)).flatten() {
                Some(path) => sources.push(Source::Summary(path)),
                None => sources.extend(names.into_iter().map(|name| Source::Rows(dir.join(name)))),
            }
        }
    }
    Ok(sources)
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
    Ok(rows_of(query, portfolio)?.time_ordered())
}

/// `portfolio`'s rows in the interval, taken by a [`StatsConsumer`].
fn rows_of(query: &Query, portfolio: PortfolioId) -> Result<StatsConsumer, QueryError> {
    let mut rows = StatsConsumer::default();
    for path in
        files(&query.data, query.interval).map_err(|cause| QueryError::Folder { data: query.data.clone(), cause })?
    {
        scan(&path, Some(portfolio), query.interval, &mut rows)
            .map_err(|cause| QueryError::Read { path: path.clone(), cause })?;
    }
    Ok(rows)
}
