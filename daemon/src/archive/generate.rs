//! `stockd gen-data --archive`: the rows `stockd gen-data` would write as
//! CSV files, written as an archive instead: one Parquet file per hour and
//! range of portfolios (at most [`MERGE_ROWS`] rows, cut by window, as
//! compaction leaves them), each hour's summaries (its own and its
//! windows') beside it, and the coverage mark, so
//! `stockd query` reads it as a sink's archive. For benchmarks: a day of
//! the seed's scale is written in minutes, not run for a day.

use std::path::Path;

use rayon::prelude::*;

use super::maintain::MERGE_ROWS;
use super::{ArchiveRow, Coverage, HOUR, WINDOW, encode, hour_dir, hour_of, summary};
use crate::market::PortfolioId;
use crate::query::generate::{Dataset, Walk, portfolios, write_names};
use crate::statistics::Summary;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Portfolios.
    pub portfolios: u64,
    /// Rows.
    pub rows: u64,
    /// Parquet files of rows.
    pub files: u64,
    /// Hours (each with its summary).
    pub hours: u64,
    /// Day summaries.
    pub days: u64,
}

/// What one chunk of portfolios gives an hour.
struct Part {
    /// Its file's name.
    name: String,
    /// Its rows.
    rows: u64,
    /// Its portfolios' summaries over the hour.
    hour: Vec<(PortfolioId, Summary)>,
    /// Over each window of the hour, in order.
    windows: Vec<Vec<(PortfolioId, Summary)>>,
}

/// Writes `dataset` as an archive into `dir` (created if needed).
pub fn generate(dataset: &Dataset, dir: &Path) -> std::io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut ids = portfolios(dataset);
    ids.sort_by_cached_key(|id| id.to_string());
    let mut walks: Vec<Walk> = ids.iter().map(|id| Walk::new(dataset, *id)).collect();
    let rows_per_hour = (HOUR / dataset.step).max(1) as u64;
    let chunk = (MERGE_ROWS / rows_per_hour).max(1) as usize;
    let mut written = Written { portfolios: ids.len() as u64, ..Written::default() };
    let mut hour = hour_of(dataset.start.and_utc().timestamp());
    while walks.iter().any(|walk| walk.next_at().is_some()) {
        let end = hour + HOUR;
        let hour_path = dir.join(hour_dir(hour));
        std::fs::create_dir_all(&hour_path)?;
        let windows: Vec<i64> = summary::windows(hour).collect();
        let parts: Vec<Part> = walks
            .par_chunks_mut(chunk)
            .enumerate()
            .map(|(index, walks)| {
                let mut rows = Vec::new();
                let mut hour_summaries = Vec::new();
                let mut window_summaries = vec![Vec::new(); windows.len()];
                let (mut at, mut navs) = (Vec::new(), Vec::new());
                for walk in walks {
                    let first = rows.len();
                    while walk.next_at().is_some_and(|at| at.and_utc().timestamp() < end) {
                        let view = walk.next().expect("a next row");
                        rows.push(ArchiveRow {
                            portfolio: view.portfolio,
                            timestamp: view.at.and_utc().timestamp(),
                            nav: view.nav,
                            nav_change: view.nav_change,
                            nav_change_pct: view.nav_change_pct,
                        });
                    }
                    let Some(portfolio) = rows.get(first).map(|row| row.portfolio) else { continue };
                    at.clear();
                    navs.clear();
                    at.extend(rows[first..].iter().map(|row| row.timestamp));
                    navs.extend(rows[first..].iter().map(|row| row.nav));
                    hour_summaries.extend(Summary::of_series(&at, &navs).map(|summary| (portfolio, summary)));
                    for (k, window) in windows.iter().enumerate() {
                        let rows = at.partition_point(|&t| t < *window)..at.partition_point(|&t| t < window + WINDOW);
                        if let Some(summary) = Summary::of_series(&at[rows.clone()], &navs[rows]) {
                            window_summaries[k].push((portfolio, summary));
                        }
                    }
                }
                let name = format!("c-gen-{index:06}.parquet");
                if !rows.is_empty() {
                    let bytes = encode::to_parquet([&encode::batch(&rows)], encode::Layout::Windows);
                    std::fs::write(hour_path.join(&name), bytes)?;
                }
                Ok(Part { name, rows: rows.len() as u64, hour: hour_summaries, windows: window_summaries })
            })
            .collect::<std::io::Result<_>>()?;
        let sources: Vec<String> = parts.iter().filter(|part| part.rows > 0).map(|part| part.name.clone()).collect();
        written.rows += parts.iter().map(|part| part.rows).sum::<u64>();
        written.files += sources.len() as u64;
        written.hours += 1;
        // The files are in PORTFOLIO's text order, the summaries in the
        // query's.
        let sorted = |mut summaries: Vec<(PortfolioId, Summary)>| {
            summaries.par_sort_unstable_by_key(|(portfolio, _)| *portfolio);
            summaries
        };
        let mut by_window = vec![Vec::new(); windows.len()];
        let mut hour_summaries = Vec::new();
        for part in parts {
            hour_summaries.extend(part.hour);
            for (k, window) in part.windows.into_iter().enumerate() {
                by_window[k].extend(window);
            }
        }
        summary::write_summaries(&summary::path(dir, hour), &sources, &sorted(hour_summaries))?;
        for (window, summaries) in windows.iter().zip(by_window) {
            summary::write_window(dir, *window, &sources, &sorted(summaries))?;
        }
        hour = end;
    }
    // The hours' summaries are current: this builds the days'.
    written.days = summary::refresh(dir, i64::MAX / 2, 0, &std::sync::atomic::AtomicBool::new(false))?;
    write_names(dataset, dir)?;
    Coverage::mark_covering(dir)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::parse_timestamp;
    use crate::query::{Query, batch::Interval, run};

    /// The archive and the CSV files of one dataset answer alike, and the
    /// archive's statistics over whole hours come from its summaries.
    #[test]
    fn the_archive_holds_the_rows_the_csv_files_hold() {
        let dataset = Dataset {
            investors: 3,
            portfolios: 4,
            rows: 500,
            start: parse_timestamp("2026-11-24 09:41:40").unwrap(),
            seed: 7,
            step: 30,
        };
        let (csv, archive) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        crate::query::generate::generate(&dataset, csv.path()).unwrap();
        let written = generate(&dataset, archive.path()).unwrap();
        assert_eq!((written.portfolios, written.rows, written.hours, written.days), (12, 6000, 5, 1), "09:41 to 13:51");
        let hour = hour_of(parse_timestamp("2026-11-24 10:00:00").unwrap().and_utc().timestamp());
        let names = super::super::read::parquet_names(&archive.path().join(hour_dir(hour))).unwrap();
        assert!(summary::usable(archive.path(), hour, &names).is_some(), "a current summary");
        for window in summary::windows(hour) {
            assert!(summary::usable_window(archive.path(), window, &names).is_some(), "a current window summary");
        }
        // On one thread too: its sources are then folded in one list.
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for (from, to) in [
            (None, None),
            (Some("2026-11-24 10:00:00"), Some("2026-11-24 11:59:59")),
            // Whole windows, then the hour's summary.
            (Some("2026-11-24 10:20:00"), Some("2026-11-24 11:59:59")),
            // Edges that cut windows: rows at each edge, window summaries
            // between, in two hours and within one.
            (Some("2026-11-24 10:25:10"), Some("2026-11-24 11:44:50")),
            (Some("2026-11-24 10:31:10"), Some("2026-11-24 10:48:50")),
            (Some("2026-11-24 10:31:10"), Some("2026-11-24 10:36:50")),
        ] {
            let interval = Interval {
                from: from.map(|t| parse_timestamp(t).unwrap().and_utc().timestamp()),
                to: to.map(|t| parse_timestamp(t).unwrap().and_utc().timestamp()),
            };
            let ask = |data: &Path| {
                run(&Query { data: data.to_path_buf(), portfolio: "2.3".parse().ok(), interval, stats: true }).unwrap()
            };
            let (want, got, alone) = (ask(csv.path()), ask(archive.path()), one_thread.install(|| ask(archive.path())));
            // On all threads and on one, the CSV files' answers.
            for got in [got, alone] {
                assert_eq!(got.rows, want.rows, "the same rows, bit for bit");
                assert_eq!(got.stats.len(), 12);
                for (got, want) in got.stats.iter().zip(&want.stats) {
                    assert_eq!((got.portfolio, got.moments.count), (want.portfolio, want.moments.count));
                    assert!((got.moments.mean - want.moments.mean).abs() <= 1e-9 * want.moments.mean);
                    let (got_sd, want_sd) = (got.moments.stddev().unwrap(), want.moments.stddev().unwrap());
                    assert!(
                        (got_sd - want_sd).abs() <= 1e-9 * want_sd,
                        "{} {from:?}: {got_sd} {want_sd}",
                        got.portfolio
                    );
                    assert_eq!((got.moments.min, got.moments.max), (want.moments.min, want.moments.max));
                    assert_eq!(
                        (got.trend.first, got.trend.last, got.trend.fall),
                        (want.trend.first, want.trend.last, want.trend.fall)
                    );
                    let (got_vol, want_vol) = (got.trend.volatility().unwrap(), want.trend.volatility().unwrap());
                    assert!((got_vol - want_vol).abs() <= 1e-9 * want_vol, "{}: {got_vol} {want_vol}", got.portfolio);
                }
            }
        }
    }
}
