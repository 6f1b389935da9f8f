//! Reading the archive: the files of the hour partitions an interval
//! touches, as record batches in the query's file schema (TIMESTAMP in
//! seconds), filtered to the interval and, when asked, to one portfolio
//! (row groups and pages whose PORTFOLIO statistics cannot hold it are not
//! read); or, for the statistics, as runs of each portfolio's times and
//! NAVs ([`scan_runs`]).

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, RecordBatch, StringArray};
use arrow::compute::kernels::cmp;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Schema, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::metadata::{ColumnChunkMask, PageIndexPolicy, ParquetMetaData, RowGroupMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;

use super::pread::PositionedFile;
use super::{DIR, HOUR, hour_of_dir};
use crate::market::PortfolioId;
use crate::query::batch::{BATCH_ROWS, BatchConsumer, FILE_SCHEMA, Interval, deliver};

/// The archive's files in the hour partitions that overlap `interval`, by
/// hour then name.
pub fn files(data: &Path, interval: Interval) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (start, dir) in hour_dirs(&data.join(DIR))? {
        let overlaps = interval.from.is_none_or(|from| start + HOUR > from) && interval.to.is_none_or(|to| start <= to);
        if overlaps {
            files.extend(parquet_names(&dir)?.into_iter().map(|name| dir.join(name)));
        }
    }
    Ok(files)
}

/// The hour folders under `root` (`date=…/hour=…`), with their starts,
/// oldest first.
pub fn hour_dirs(root: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut hours: Vec<(i64, PathBuf)> = Vec::new();
    for date in read_dir_names(root)? {
        for hour in read_dir_names(&root.join(&date))? {
            if let Some(start) = hour_of_dir(&date, &hour) {
                hours.push((start, root.join(&date).join(hour)));
            }
        }
    }
    hours.sort();
    Ok(hours)
}

/// The names of the Parquet files in the hour folder `dir`, sorted (none
/// if it does not exist).
pub fn parquet_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = read_dir_names(dir)?.into_iter().filter(|n| n.ends_with(".parquet")).collect();
    names.sort();
    Ok(names)
}

/// The names in folder `dir` (none if it does not exist).
fn read_dir_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Some(name) = entry?.file_name().to_str()
            && !name.starts_with('.')
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Reads `path` into `consumer`: the rows in `interval` (of `portfolio`
/// only, when given), batch by batch, in the query's file schema.
pub fn scan<C: BatchConsumer>(
    path: &Path,
    portfolio: Option<PortfolioId>,
    interval: Interval,
    consumer: &mut C,
) -> io::Result<()> {
    let file = PositionedFile::open(path)?;
    // The page index only helps to find one portfolio.
    let policy = if portfolio.is_some() { PageIndexPolicy::Optional } else { PageIndexPolicy::Skip };
    // Of the column index, only PORTFOLIO's bounds are used.
    let options =
        ArrowReaderOptions::new().with_page_index_policy(policy).with_column_index_mask(ColumnChunkMask::columns([0]));
    let mut builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(invalid)?
        .with_batch_size(BATCH_ROWS);
    let groups = match per_second(builder.schema().field(1).data_type()) {
        Some(per_second) => groups_in_time(builder.metadata(), bounds(interval, per_second)),
        None => (0..builder.metadata().num_row_groups()).collect(),
    };
    let wanted = portfolio.map(|p| p.to_string());
    if let Some(wanted) = &wanted {
        let (groups, selection) = pages_holding(builder.metadata(), wanted.as_bytes(), groups);
        builder = builder.with_row_groups(groups).with_row_selection(selection);
    } else {
        builder = builder.with_row_groups(groups);
    }
    for batch in builder.build().map_err(invalid)? {
        let mut batch = in_file_schema(&batch.map_err(invalid)?).map_err(invalid)?;
        if let Some(wanted) = &wanted {
            let portfolios = batch.column(0).clone();
            let mask = cmp::eq(&portfolios, &StringArray::new_scalar(wanted.as_str())).expect("strings");
            if mask.true_count() == 0 {
                continue;
            }
            batch = filter_record_batch(&batch, &mask).expect("mask of the batch's length");
        }
        deliver(&batch, None, interval, consumer);
    }
    Ok(())
}

/// Reads `path`'s PORTFOLIO, TIMESTAMP and NAV columns only (what the
/// statistics need: NAV_Change and NAV_Change_% are not decoded) and hands
/// `take` each run of one portfolio's rows in `interval`: its PORTFOLIO,
/// the rows' times (seconds since the epoch) in order and their NAVs. A
/// portfolio's rows come as one run per row group holding them (split
/// where a batch of the reader ends), each row group being sorted by PORTFOLIO then TIMESTAMP;
/// a run out of time order is sorted first. Only the row groups whose
/// TIMESTAMP statistics can hold a time in `interval` are read.
///
/// This is the statistics' path over rows, so it avoids per-row work: a
/// dictionary-encoded PORTFOLIO (compacted and generated files) is read as
/// its keys, never as a string per row, and a run's rows in the interval
/// are found by two binary searches instead of a filtered copy.
pub fn scan_runs(path: &Path, interval: Interval, mut take: impl FnMut(&str, &[i64], &[f64])) -> io::Result<()> {
    let file = PositionedFile::open(path)?;
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);
    let mut metadata = ArrowReaderMetadata::load(&file, options.clone()).map_err(invalid)?;
    let schema = metadata.schema();
    if schema.fields().len() != FILE_SCHEMA.fields().len() || schema.field(0).data_type() != &DataType::Utf8 {
        return Err(invalid(format!("not an archive file's columns: {schema:?}")));
    }
    let unit = schema.field(1).data_type();
    let per_second = per_second(unit).ok_or_else(|| invalid(format!("TIMESTAMP is {unit}")))?;
    let dictionary =
        metadata.metadata().row_groups().iter().all(|group| group.column(0).dictionary_page_offset().is_some());
    if dictionary {
        let mut fields: Vec<Field> = schema.fields().iter().map(|field| field.as_ref().clone()).collect();
        fields[0] =
            fields[0].clone().with_data_type(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)));
        let options = options.with_schema(Arc::new(Schema::new(fields)));
        metadata = ArrowReaderMetadata::try_new(Arc::clone(metadata.metadata()), options).map_err(invalid)?;
    }
    // The row groups that can hold a time in the interval: of a file cut by
    // window, those of the windows the interval touches.
    let groups = groups_in_time(metadata.metadata(), bounds(interval, per_second));
    if groups.is_empty() {
        return Ok(());
    }
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata)
        .with_batch_size(BATCH_ROWS)
        .with_row_groups(groups);
    let mask = ProjectionMask::roots(builder.parquet_schema(), [0, 1, 2]);
    let mut unordered: Vec<(i64, f64)> = Vec::new();
    let (mut seconds, mut navs) = (Vec::new(), Vec::new());
    for batch in builder.with_projection(mask).build().map_err(invalid)? {
        let batch = batch.map_err(invalid)?;
        let RunColumns { portfolios, times, navs: all_navs } = RunColumns::of(&batch).map_err(invalid)?;
        let (from, to) = bounds(interval, per_second);
        for (run, portfolio) in runs(portfolios.as_ref()).map_err(invalid)? {
            let (at, nav) = (&times[run.clone()], &all_navs[run]);
            seconds.clear();
            if at.is_sorted() {
                let within = at.partition_point(|&t| t < from)..at.partition_point(|&t| t <= to);
                seconds.extend(at[within.clone()].iter().map(|t| t.div_euclid(per_second)));
                if !seconds.is_empty() {
                    take(portfolio, &seconds, &nav[within]);
                }
                continue;
            }
            unordered.clear();
            unordered.extend(at.iter().zip(nav).map(|(&t, &v)| (t, v)).filter(|&(t, _)| from <= t && t <= to));
            unordered.sort_by_key(|&(t, _)| t);
            navs.clear();
            seconds.extend(unordered.iter().map(|&(t, _)| t.div_euclid(per_second)));
            navs.extend(unordered.iter().map(|&(_, v)| v));
            if !seconds.is_empty() {
                take(portfolio, &seconds, &navs);
            }
        }
    }
    Ok(())
}

/// A batch of PORTFOLIO, TIMESTAMP and NAV as [`scan_runs`] reads it.
struct RunColumns<'a> {
    /// As read: strings, or a dictionary of strings.
    portfolios: &'a ArrayRef,
    /// The times, in the file's unit.
    times: &'a [i64],
    /// The NAVs.
    navs: &'a [f64],
}

impl<'a> RunColumns<'a> {
    /// The columns of `batch`; an error for anything else, or a null.
    fn of(batch: &'a RecordBatch) -> Result<RunColumns<'a>, String> {
        if batch.num_columns() != 3 || batch.schema().field(0).name() != "PORTFOLIO" {
            return Err(format!("not an archive file's columns: {:?}", batch.schema()));
        }
        if let Some(column) = batch.columns().iter().position(|column| column.null_count() > 0) {
            return Err(format!("a null in column {}", batch.schema().field(column).name()));
        }
        let at = batch.column(1);
        let times: &[i64] = match at.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => at.as_primitive::<TimestampSecondType>().values(),
            DataType::Timestamp(TimeUnit::Millisecond, _) => at.as_primitive::<TimestampMillisecondType>().values(),
            DataType::Timestamp(TimeUnit::Microsecond, _) => at.as_primitive::<TimestampMicrosecondType>().values(),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => at.as_primitive::<TimestampNanosecondType>().values(),
            other => return Err(format!("TIMESTAMP is {other}")),
        };
        let navs = batch.column(2).as_primitive_opt::<Float64Type>().ok_or("NAV is not a double")?.values();
        Ok(RunColumns { portfolios: batch.column(0), times, navs })
    }
}

/// A TIMESTAMP column's units per second; `None` when it is not a
/// timestamp.
fn per_second(data_type: &DataType) -> Option<i64> {
    match data_type {
        DataType::Timestamp(TimeUnit::Second, _) => Some(1),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(1_000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(1_000_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(1_000_000_000),
        _ => None,
    }
}

/// `interval` in a unit of `per_second` a second, both ends included: a
/// row is in the interval when its time, rounded down to the second, is.
fn bounds(interval: Interval, per_second: i64) -> (i64, i64) {
    let from = interval.from.map_or(i64::MIN, |from| from.saturating_mul(per_second));
    let to = interval.to.map_or(i64::MAX, |to| to.saturating_mul(per_second).saturating_add(per_second - 1));
    (from, to)
}

/// The row groups whose TIMESTAMP statistics can hold a time in
/// `[from, to]` (the file's unit); a row group without them, always.
fn groups_in_time(metadata: &ParquetMetaData, (from, to): (i64, i64)) -> Vec<usize> {
    let may_hold = |group: &RowGroupMetaData| match group.column(1).statistics() {
        Some(Statistics::Int64(times)) => {
            times.min_opt().is_none_or(|&min| min <= to) && times.max_opt().is_none_or(|&max| from <= max)
        }
        _ => true,
    };
    metadata.row_groups().iter().enumerate().filter(|(_, group)| may_hold(group)).map(|(index, _)| index).collect()
}

/// The runs of equal PORTFOLIO in `portfolios` (strings, or a dictionary of
/// strings compared by key): their rows and their PORTFOLIO.
fn runs(portfolios: &dyn Array) -> Result<Vec<(Range<usize>, &str)>, String> {
    if let Some(dictionary) = portfolios.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        let names = dictionary.values().as_any().downcast_ref::<StringArray>().ok_or("PORTFOLIO is not text")?;
        let keys = dictionary.keys().values();
        let name = |row: usize| usize::try_from(keys[row]).map_or("", |key| names.value(key));
        return Ok(split_runs(keys.len(), |a, b| keys[a] == keys[b], name));
    }
    let names = portfolios.as_any().downcast_ref::<StringArray>().ok_or("PORTFOLIO is not text")?;
    Ok(split_runs(names.len(), |a, b| names.value(a) == names.value(b), |row| names.value(row)))
}

/// The runs of rows `0..len` where `same(row - 1, row)`, each with its
/// `name`.
fn split_runs<'a>(
    len: usize,
    same: impl Fn(usize, usize) -> bool,
    name: impl Fn(usize) -> &'a str,
) -> Vec<(Range<usize>, &'a str)> {
    let mut runs = Vec::new();
    let mut start = 0;
    for row in 1..=len {
        if row == len || !same(row - 1, row) {
            runs.push((start..row, name(start)));
            start = row;
        }
    }
    runs
}

/// The row groups of `candidates`, and the rows within them, that can
/// hold PORTFOLIO `wanted`: by the row groups' statistics, then by the
/// page index's (pages of a few thousand rows, in row groups sorted by
/// PORTFOLIO), so one portfolio's rows cost a page per row group that
/// holds it, not the file.
fn pages_holding(metadata: &ParquetMetaData, wanted: &[u8], candidates: Vec<usize>) -> (Vec<usize>, RowSelection) {
    let may_hold = |min: Option<&[u8]>, max: Option<&[u8]>| {
        min.is_none_or(|min| min <= wanted) && max.is_none_or(|max| wanted <= max)
    };
    let mut groups = Vec::new();
    let mut selectors = Vec::new();
    for index in candidates {
        let group = metadata.row_group(index);
        let stats = group.column(0).statistics();
        if !stats.is_none_or(|stats| may_hold(stats.min_bytes_opt(), stats.max_bytes_opt())) {
            continue;
        }
        groups.push(index);
        let rows = usize::try_from(group.num_rows()).unwrap_or(0);
        let pages = metadata.page_index_for_row_group(index);
        match (pages.column_index(0), pages.offset_index(0)) {
            (Some(ColumnIndexMetaData::BYTE_ARRAY(bounds)), Some(offsets)) => {
                let locations = offsets.page_locations();
                for (page, location) in locations.iter().enumerate() {
                    let start = usize::try_from(location.first_row_index).unwrap_or(0);
                    let end = locations
                        .get(page + 1)
                        .map_or(rows, |next| usize::try_from(next.first_row_index).unwrap_or(rows));
                    let count = end.saturating_sub(start);
                    selectors.push(if may_hold(bounds.min_value(page), bounds.max_value(page)) {
                        RowSelector::select(count)
                    } else {
                        RowSelector::skip(count)
                    });
                }
            }
            _ => selectors.push(RowSelector::select(rows)),
        }
    }
    (groups, RowSelection::from(selectors))
}

/// An archive batch as the query's file schema has it: TIMESTAMP in
/// seconds without a zone.
fn in_file_schema(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let schema = Arc::clone(&FILE_SCHEMA);
    if batch.num_columns() != schema.fields().len() || batch.schema().field(0).name() != "PORTFOLIO" {
        return Err(format!("not an archive file's columns: {:?}", batch.schema()));
    }
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    arrays[1] = cast(batch.column(1), &DataType::Timestamp(TimeUnit::Second, None)).map_err(|e| e.to_string())?;
    for (field, array) in schema.fields().iter().zip(&arrays) {
        if array.data_type() != field.data_type() {
            return Err(format!("column {} is {}", field.name(), array.data_type()));
        }
    }
    RecordBatch::try_new(schema, arrays).map_err(|e| e.to_string())
}

/// A file that is not what an archive file should be (the `parquet` or
/// `arrow` crate's error, or ours).
fn invalid(error: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs::File;

    use super::*;
    use crate::archive::{ArchiveRow, encode};
    use crate::market::InvestorId;

    /// Counts the rows taken, by portfolio.
    #[derive(Default)]
    struct Count(BTreeMap<String, usize>);

    impl BatchConsumer for Count {
        fn take(&mut self, batch: &RecordBatch) {
            let portfolios = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            for portfolio in portfolios.iter().flatten() {
                *self.0.entry(portfolio.to_string()).or_default() += 1;
            }
        }
    }

    #[test]
    fn one_portfolio_is_read_from_the_pages_that_hold_it_and_only_its_rows_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        // 60 portfolios × 1,000 rows: many pages, portfolios across page
        // boundaries.
        let mut rows: Vec<ArchiveRow> = (1..=60)
            .flat_map(|n| {
                (0..1000).map(move |k| ArchiveRow {
                    portfolio: PortfolioId::new(InvestorId::new(n).unwrap(), 1).unwrap(),
                    timestamp: 1_764_000_000 + 20 * k,
                    nav: f64::from(n),
                    nav_change: 0.0,
                    nav_change_pct: 0.0,
                })
            })
            .collect();
        std::fs::write(&path, encode::rows_to_parquet(&mut rows, encode::Layout::Runs)).unwrap();
        let file = File::open(&path).unwrap();
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let metadata = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).unwrap().metadata().clone();
        for wanted in ["1.1", "17.1", "33.1", "60.1"] {
            let groups = (0..metadata.num_row_groups()).collect();
            let (_, selection) = pages_holding(&metadata, wanted.as_bytes(), groups);
            assert!(selection.row_count() < 60_000 / 4, "{wanted}: {} rows selected of 60,000", selection.row_count());
            let mut count = Count::default();
            scan(&path, Some(wanted.parse().unwrap()), Interval::default(), &mut count).unwrap();
            assert_eq!(count.0.into_iter().collect::<Vec<_>>(), [(wanted.to_string(), 1000)]);
        }
        let mut all = Count::default();
        scan(&path, None, Interval::default(), &mut all).unwrap();
        assert_eq!((all.0.len(), all.0.values().sum::<usize>()), (60, 60_000));
    }

    /// A window's and an hour's start.
    const START: i64 = 1_764_000_000;

    /// `rows` rows of each of the portfolios 1.1 to `portfolios`.1, 20 s
    /// apart from [`START`]; NAV = 1,000 × investor + row.
    fn rows_every_20_s(portfolios: u32, rows: i64) -> Vec<ArchiveRow> {
        (1..=portfolios)
            .flat_map(|n| {
                (0..rows).map(move |k| ArchiveRow {
                    portfolio: PortfolioId::new(InvestorId::new(n).unwrap(), 1).unwrap(),
                    timestamp: START + 20 * k,
                    nav: f64::from(n * 1000) + k as f64,
                    nav_change: 0.0,
                    nav_change_pct: 0.0,
                })
            })
            .collect()
    }

    /// Each portfolio's times and NAVs from the runs `scan_runs` hands on,
    /// joined in the order they came.
    fn runs_of(path: &Path, interval: Interval) -> BTreeMap<String, (Vec<i64>, Vec<f64>)> {
        let mut runs: BTreeMap<String, (Vec<i64>, Vec<f64>)> = BTreeMap::new();
        scan_runs(path, interval, |portfolio, at, navs| {
            assert!(at.is_sorted(), "{portfolio}: a run in time order");
            let joined = runs.entry(portfolio.to_string()).or_default();
            joined.0.extend(at);
            joined.1.extend(navs);
        })
        .unwrap();
        runs
    }

    #[test]
    fn runs_hold_each_portfolios_rows_in_the_interval_in_time_order_whatever_the_files_layout() {
        // 30 portfolios × 50 rows.
        let rows = rows_every_20_s(30, 50);
        let dir = tempfile::tempdir().unwrap();
        let batch = dir.path().join("b.parquet");
        std::fs::write(&batch, encode::rows_to_parquet(&mut rows.clone(), encode::Layout::Batch)).unwrap();
        let runs = dir.path().join("r.parquet");
        std::fs::write(&runs, encode::rows_to_parquet(&mut rows.clone(), encode::Layout::Runs)).unwrap();
        // Not written by stockd: each portfolio's rows newest first.
        let reversed = dir.path().join("x.parquet");
        let mut newest_first = rows.clone();
        encode::sort(&mut newest_first);
        newest_first.sort_by_key(|row| (row.portfolio.to_string(), -row.timestamp));
        std::fs::write(&reversed, encode::to_parquet([&encode::batch(&newest_first)], encode::Layout::Runs)).unwrap();
        // Cut by window: rows 0 to 29 in one row group, 30 to 49 in the next.
        let windows = dir.path().join("w.parquet");
        std::fs::write(&windows, encode::rows_to_parquet(&mut rows.clone(), encode::Layout::Windows)).unwrap();
        let dictionary = |path: &Path| {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
            reader.metadata().row_groups()[0].column(0).dictionary_page_offset().is_some()
        };
        assert_eq!((dictionary(&batch), dictionary(&runs)), (false, true), "the two ways PORTFOLIO is read");

        // Rows 10 to 39 of each portfolio: the interval cuts every run.
        let interval = Interval { from: Some(START + 20 * 10), to: Some(START + 20 * 39) };
        for path in [&batch, &runs, &reversed, &windows] {
            let got = runs_of(path, interval);
            assert_eq!(got.len(), 30, "{}", path.display());
            for n in 1..=30 {
                let (at, navs) = &got[&format!("{n}.1")];
                assert_eq!(at, &(10..40).map(|k| START + 20 * k).collect::<Vec<_>>(), "{}", path.display());
                assert_eq!(navs, &(10..40).map(|k| f64::from(n * 1000) + k as f64).collect::<Vec<_>>());
            }
        }
        let after = Interval { from: Some(START + 20 * 50), to: None };
        assert!(runs_of(&runs, after).is_empty(), "no run without rows in the interval");
    }

    #[test]
    fn a_file_cut_by_window_has_a_row_group_per_window_and_a_part_of_an_hour_reads_only_its_windows() {
        // 20 portfolios, a row every 20 s for an hour: six windows of 30
        // rows each.
        assert_eq!(crate::archive::window_of(START), START);
        let mut rows = rows_every_20_s(20, 180);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        std::fs::write(&path, encode::rows_to_parquet(&mut rows, encode::Layout::Windows)).unwrap();
        let metadata = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap().metadata().clone();
        assert_eq!(metadata.num_row_groups(), 6);
        for (k, group) in metadata.row_groups().iter().enumerate() {
            let Some(Statistics::Int64(times)) = group.column(1).statistics() else { panic!("TIMESTAMP statistics") };
            let window = (START + 600 * k as i64) * 1000;
            assert_eq!(
                (*times.min_opt().unwrap(), *times.max_opt().unwrap()),
                (window, window + 580_000),
                "window {k}"
            );
            assert_eq!(group.num_rows(), 20 * 30);
        }
        // Each row group sorted by PORTFOLIO (as text) then TIMESTAMP, and
        // every row once.
        let mut read = Vec::new();
        for group in 0..6 {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .with_row_groups(vec![group])
                .build()
                .unwrap();
            let mut keys = Vec::new();
            for batch in reader {
                let batch = batch.unwrap();
                let portfolios = batch.column(0).as_string::<i32>();
                let times = batch.column(1).as_primitive::<TimestampMillisecondType>();
                keys.extend((0..batch.num_rows()).map(|i| (portfolios.value(i).to_string(), times.value(i))));
            }
            assert!(keys.is_sorted(), "row group {group}");
            read.extend(keys);
        }
        let mut expected: Vec<(String, i64)> =
            rows.iter().map(|r| (r.portfolio.to_string(), r.timestamp * 1000)).collect();
        expected.sort();
        read.sort();
        assert_eq!(read, expected);

        let window = |from: i64, to: i64| bounds(Interval { from: Some(START + from), to: Some(START + to) }, 1000);
        assert_eq!(groups_in_time(&metadata, window(1200, 1799)), [2], "one window");
        assert_eq!(groups_in_time(&metadata, window(1500, 1900)), [2, 3], "a piece across two");
        // 1,300 s to 1,999 s: rows 65 to 99 of each portfolio, from two
        // row groups, joined in time order.
        let got = runs_of(&path, Interval { from: Some(START + 1300), to: Some(START + 1999) });
        assert_eq!(got.len(), 20);
        for n in 1..=20 {
            let (at, navs) = &got[&format!("{n}.1")];
            assert_eq!(*at, (65..=99).map(|k| START + 20 * k).collect::<Vec<_>>());
            assert_eq!(*navs, (65..=99).map(|k| f64::from(n * 1000) + k as f64).collect::<Vec<_>>());
        }
        // One portfolio's rows of the hour, from a page per window.
        let mut count = Count::default();
        scan(&path, Some("7.1".parse().unwrap()), Interval::default(), &mut count).unwrap();
        assert_eq!(count.0.into_iter().collect::<Vec<_>>(), [("7.1".to_string(), 180)]);

        // A row every 600 s: one a window, too few to cut by.
        let mut sparse: Vec<ArchiveRow> =
            rows.iter().filter(|row| (row.timestamp - START) % 600 == 0).copied().collect();
        let sparse_path = dir.path().join("s.parquet");
        std::fs::write(&sparse_path, encode::rows_to_parquet(&mut sparse, encode::Layout::Windows)).unwrap();
        let sparse_file = ParquetRecordBatchReaderBuilder::try_new(File::open(&sparse_path).unwrap()).unwrap();
        assert_eq!(sparse_file.metadata().num_row_groups(), 1);
    }
}
