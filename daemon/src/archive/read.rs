//! Reading the archive: the files of the hour partitions an interval
//! touches, as record batches in the query's file schema (TIMESTAMP in
//! seconds), filtered to the interval and, when asked, to one portfolio
//! (row groups and pages whose PORTFOLIO statistics cannot hold it are not
//! read).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::kernels::cmp;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::file::metadata::{ColumnChunkMask, PageIndexPolicy, ParquetMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;

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
/// only, when given), batch by batch, in the query's file schema with the
/// columns `columns` asks for (PORTFOLIO always leads, for grouping).
pub fn scan<C: BatchConsumer>(
    path: &Path,
    portfolio: Option<PortfolioId>,
    interval: Interval,
    consumer: &mut C,
) -> io::Result<()> {
    read(path, portfolio, interval, &[0, 1, 2, 3, 4], consumer)
}

/// Reads `path`'s PORTFOLIO, TIMESTAMP and NAV columns only (what the
/// statistics need: NAV_Change and NAV_Change_% are not decoded) into
/// `consumer`, the rows in `interval`.
pub fn scan_navs<C: BatchConsumer>(path: &Path, interval: Interval, consumer: &mut C) -> io::Result<()> {
    read(path, None, interval, &[0, 1, 2], consumer)
}

fn read<C: BatchConsumer>(
    path: &Path,
    portfolio: Option<PortfolioId>,
    interval: Interval,
    columns: &[usize],
    consumer: &mut C,
) -> io::Result<()> {
    let file = File::open(path)?;
    let invalid = |error: parquet::errors::ParquetError| io::Error::new(io::ErrorKind::InvalidData, error.to_string());
    // The page index only helps to find one portfolio.
    let policy = if portfolio.is_some() { PageIndexPolicy::Optional } else { PageIndexPolicy::Skip };
    // Of the column index, only PORTFOLIO's bounds are used.
    let options =
        ArrowReaderOptions::new().with_page_index_policy(policy).with_column_index_mask(ColumnChunkMask::columns([0]));
    let mut builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(invalid)?
        .with_batch_size(BATCH_ROWS);
    let wanted = portfolio.map(|p| p.to_string());
    if let Some(wanted) = &wanted {
        let (groups, selection) = pages_holding(builder.metadata(), wanted.as_bytes());
        builder = builder.with_row_groups(groups).with_row_selection(selection);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), columns.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(invalid)?;
    for batch in reader {
        let batch = batch.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut batch = in_file_schema(&batch, columns).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
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

/// The row groups, and the rows within them, that can hold PORTFOLIO
/// `wanted`: by the row groups' statistics, then by the page index's
/// (pages of a few thousand rows, in a file sorted by PORTFOLIO), so one
/// portfolio's rows cost a page per file, not the file.
fn pages_holding(metadata: &ParquetMetaData, wanted: &[u8]) -> (Vec<usize>, RowSelection) {
    let may_hold = |min: Option<&[u8]>, max: Option<&[u8]>| {
        min.is_none_or(|min| min <= wanted) && max.is_none_or(|max| wanted <= max)
    };
    let mut groups = Vec::new();
    let mut selectors = Vec::new();
    for (index, group) in metadata.row_groups().iter().enumerate() {
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

/// An archive batch of the columns `columns` as the query's file schema
/// has them: TIMESTAMP in seconds without a zone.
fn in_file_schema(batch: &RecordBatch, columns: &[usize]) -> Result<RecordBatch, String> {
    let schema = Arc::new(FILE_SCHEMA.project(columns).map_err(|e| e.to_string())?);
    if batch.num_columns() != columns.len() || batch.schema().field(0).name() != "PORTFOLIO" {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveRow, encode};
    use crate::market::InvestorId;

    /// Counts the rows taken, by portfolio.
    #[derive(Default)]
    struct Count(std::collections::BTreeMap<String, usize>);

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
            let (_, selection) = pages_holding(&metadata, wanted.as_bytes());
            assert!(selection.row_count() < 60_000 / 4, "{wanted}: {} rows selected of 60,000", selection.row_count());
            let mut count = Count::default();
            scan(&path, Some(wanted.parse().unwrap()), Interval::default(), &mut count).unwrap();
            assert_eq!(count.0.into_iter().collect::<Vec<_>>(), [(wanted.to_string(), 1000)]);
        }
        let mut all = Count::default();
        scan_navs(&path, Interval::default(), &mut all).unwrap();
        assert_eq!((all.0.len(), all.0.values().sum::<usize>()), (60, 60_000));
    }
}
