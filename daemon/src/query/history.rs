//! The query over the archive (`DATA/archive/`), for a folder whose archive
//! holds every row: the same answers as over the CSV files, reading only
//! the hour partitions the interval touches: for the statistics, the
//! summary of every day or hour the interval covers whole (see
//! [`crate::archive::summary`]), in the hours at its edges the summaries of
//! the windows it covers whole and the rows of the window it cuts (all the
//! hour's rows in the interval where a summary is not current); for one
//! portfolio's rows, only the row groups that can hold it.

use std::path::PathBuf;

use rayon::prelude::*;

use super::batch::Interval;
use super::{Answer, PortfolioStats, Query, QueryError, RowsConsumer, StatsConsumer, investor_name};
use crate::archive::read::{files, scan};
use crate::archive::read::{hour_dirs, parquet_names};
use crate::archive::summary::{self, Grouped};
use crate::archive::{WINDOW, window_of};
use crate::market::PortfolioId;
use crate::statistics::Summary;

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
    // The sources, in time order, cut into one contiguous share per
    // thread: each thread folds its share in time order into one list, so
    // every merge joins a portfolio's earlier summary with a later one
    // (never two with a gap between them that another fills).
    let sources = sources(query)?;
    let portfolios = sources.iter().find_map(Source::rows_of_summary).unwrap_or(0);
    let lists = shares(sources)
        .par_iter()
        .map(|share| {
            fold(share, portfolios).map_err(|(path, cause)| QueryError::Read { path: path.to_path_buf(), cause })
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

/// `sources` (in time order) cut into contiguous shares of about equal
/// work, one per thread.
fn shares(sources: Vec<Source>) -> Vec<Vec<Source>> {
    let threads = rayon::current_num_threads().max(1);
    let total: f64 = sources.iter().map(Source::work).sum();
    let mut shares: Vec<Vec<Source>> = vec![Vec::new()];
    let mut done = 0.0;
    for source in sources {
        let work = source.work();
        // Cut when this source would take the share past its end.
        let cut = total * shares.len() as f64 / threads as f64;
        if shares.len() < threads && !shares[shares.len() - 1].is_empty() && done + work / 2.0 > cut {
            shares.push(Vec::new());
        }
        done += work;
        shares.last_mut().expect("one share at least").push(source);
    }
    shares
}

/// A thread's share of the sources (in time order) folded into one list of
/// summaries sorted by portfolio (of about `portfolios`): each summary read
/// into the list in place, each piece's rows (the consecutive sources of
/// one piece) merged in once read; or the file that could not be read.
fn fold(
    share: &[Source],
    portfolios: usize,
) -> Result<Vec<(PortfolioId, Summary)>, (&std::path::Path, std::io::Error)> {
    let mut merged = Vec::new();
    let mut index = 0;
    while let Some(source) = share.get(index) {
        match source {
            Source::Summary(path) => {
                summary::read_into(path, &mut merged).map_err(|cause| (path.as_path(), cause))?;
                index += 1;
            }
            Source::Rows(_, piece) => {
                let mut grouped = Grouped::from_sorted(merged, portfolios);
                while let Some(Source::Rows(path, part)) = share.get(index)
                    && part == piece
                {
                    grouped.scan(path, *part).map_err(|cause| (path.as_path(), cause))?;
                    index += 1;
                }
                merged = grouped.into_sorted();
            }
        }
    }
    Ok(merged)
}

/// Where the statistics of a part of the interval come from.
enum Source {
    /// A day's, an hour's or a window's summary: the interval covers it
    /// whole and it is current.
    Summary(PathBuf),
    /// One of an hour's files, its rows in a part of the interval read.
    Rows(PathBuf, Interval),
}

impl Source {
    /// The rows of a summary source (its portfolios), from its footer.
    fn rows_of_summary(&self) -> Option<usize> {
        let Source::Summary(path) = self else { return None };
        summary::rows(path).ok()
    }

    /// The work of reading it, in summaries read (about a million rows of
    /// summaries each, at the seed's scale): a window's rows of a compacted
    /// file cost about a sixth of that (a window's rows, a run per
    /// portfolio, are about six summaries' work, an hour about forty
    /// files).
    fn work(&self) -> f64 {
        match self {
            Source::Summary(_) => 1.0,
            Source::Rows(_, part) => {
                let seconds = part.to.unwrap_or(0).saturating_sub(part.from.unwrap_or(0)) + 1;
                (seconds as f64 / WINDOW as f64).ceil().max(1.0) * 0.15
            }
        }
    }
}

/// An hour folder: its start, its path and its files' names.
type HourFiles = (i64, PathBuf, Vec<String>);

/// The sources of the statistics over `query`'s interval: the summary of
/// every day the interval covers whole that has a current one, else the
/// summary of every hour it covers whole that has a current one, else the
/// summaries of the windows it covers whole and the rows of the rest of
/// the hour (see [`whole_windows`]).
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
            let end = start + crate::archive::HOUR - 1;
            if covers(start, end)
                && let Some(path) = summary::usable(data, start, &names)
            {
                sources.push(Source::Summary(path));
                continue;
            }
            let part = Interval {
                from: Some(interval.from.map_or(start, |from| from.max(start))),
                to: Some(interval.to.map_or(end, |to| to.min(end))),
            };
            let dir = &dir;
            let rows = |piece: Interval| names.iter().map(move |name| Source::Rows(dir.join(name), piece));
            match whole_windows(data, part, &names) {
                Some((before, summaries, after)) => {
                    sources.extend(before.into_iter().flat_map(rows));
                    sources.extend(summaries.into_iter().map(Source::Summary));
                    sources.extend(after.into_iter().flat_map(rows));
                }
                None => sources.extend(rows(part)),
            }
        }
    }
    Ok(sources)
}

/// The pieces of rows and window summaries of `part`, a part of one hour
/// whose folder holds the files `names`, in time order: the piece before
/// the first window `part` covers whole, those windows' summaries, the
/// piece after the last (each piece within a window, if any). `None` when
/// it covers no window whole or one's summary is not current: its rows
/// are then read whole.
fn whole_windows(data: &std::path::Path, part: Interval, names: &[String]) -> Option<WholeWindows> {
    let (from, to) = (part.from?, part.to?);
    // The whole windows: from the first starting at or after `from` to the
    // last ending at or before `to`.
    let (first, end) = (window_of(from + WINDOW - 1), window_of(to + 1));
    let summaries: Vec<PathBuf> = (first..end)
        .step_by(WINDOW as usize)
        .map(|window| summary::usable_window(data, window, names))
        .collect::<Option<_>>()?;
    if summaries.is_empty() {
        return None;
    }
    let before = (from < first).then_some(Interval { from: Some(from), to: Some(first - 1) });
    let after = (end <= to).then_some(Interval { from: Some(end), to: Some(to) });
    Some((before, summaries, after))
}

/// The piece of rows before, the window summaries, the piece after.
type WholeWindows = (Option<Interval>, Vec<PathBuf>, Option<Interval>);

/// Whether the folder knows `portfolio` outside the interval: its CSV file
/// exists (cut back to its header by the CSV window, it still does), or the
/// archive has a row of it.
fn known(query: &Query, portfolio: PortfolioId) -> bool {
    if query.data.join(crate::layout::file_name(portfolio)).is_file() {
        return true;
    }
    let Ok(all) = files(&query.data, Interval::default()) else { return false };
    let mut rows = RowsConsumer::default();
    all.iter().any(|path| scan(path, Some(portfolio), Interval::default(), &mut rows).is_ok() && !rows.rows.is_empty())
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
