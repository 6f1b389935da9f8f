//! Archive rows to Parquet: the schema, the sort order and the encodings.
//!
//! Each row group is sorted by PORTFOLIO (as text, so that the row groups'
//! and pages' min/max statistics bound the portfolios they hold), then
//! TIMESTAMP; a file of [`Layout::Windows`] holds a row group (or several)
//! per [`WINDOW`] of time, so that its TIMESTAMP statistics let a reader of
//! part of an hour skip the other windows. The encodings follow the data:
//! - PORTFOLIO, by the file's [`Layout`]: in a sink's batch file (about one
//!   row per portfolio) prefix-coded, `DELTA_BYTE_ARRAY`; in a file of runs
//!   (compacted, generated or imported: each portfolio's rows of an hour
//!   together) a dictionary, whose indices run-length encode to next to
//!   nothing;
//! - TIMESTAMP: delta encoding (consecutive rows are one interval apart);
//! - NAV, NAV_Change, NAV_Change_%: doubles (the CSV's values bit for bit,
//!   whatever a producer sent), byte-stream split so that zstd finds the
//!   slowly varying sign, exponent and high mantissa bytes;
//! - everything zstd-compressed, with statistics and a page index for
//!   readers that look for one portfolio.

use std::sync::{Arc, LazyLock};

use std::collections::BTreeMap;

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{ArchiveRow, WINDOW};
use crate::layout::COLUMNS;

/// The archive's columns (the CSV header's).
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(COLUMNS[0], DataType::Utf8, false),
        Field::new(COLUMNS[1], DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new(COLUMNS[2], DataType::Float64, false),
        Field::new(COLUMNS[3], DataType::Float64, false),
        Field::new(COLUMNS[4], DataType::Float64, false),
    ]))
});

/// Rows per row group: large enough to compress well, small enough that
/// a reader looking for one portfolio skips most of a file.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Rows per data page at most.
pub const PAGE_ROWS: usize = 4096;

/// zstd's level: 3 (its default) compresses these columns within a few
/// percent of level 9 at a third of the time.
const ZSTD_LEVEL: i32 = 3;

/// What a file's rows look like, which decides how PORTFOLIO is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A sink's batch: about one row per portfolio. A dictionary would be
    /// as large as the column and is read whole by every reader that wants
    /// one page: one portfolio's rows took 1.9 ms per 118,000-row batch
    /// file with it, 0.26 ms prefix-coded, in a file a third of the size.
    Batch,
    /// Runs of each portfolio's rows (an open hour's merged generation,
    /// which a later merge reads in order): a dictionary of the file's
    /// portfolios, its indices run-length encoded (a whole-file scan is a
    /// quarter faster than prefix-coded).
    Runs,
    /// Runs as [`Layout::Runs`], cut by [`WINDOW`]: a row group (or
    /// several) per window, in time order, each sorted by PORTFOLIO then
    /// TIMESTAMP (a closed hour's compacted files, `gen-data`'s, `stockd
    /// archive`'s), when its portfolios have rows enough a window for it to
    /// pay ([`super::dense`]). A question over part of an hour reads the
    /// row groups of the windows it touches; one portfolio's rows cost a
    /// column chunk per window instead of one per file.
    Windows,
}

fn properties(layout: Layout) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("a valid level")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Pages of a few thousand rows: one portfolio's rows cost a page
        // per file (found by the page index), not 20,000 rows.
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_column_encoding(ColumnPath::from("TIMESTAMP"), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(ColumnPath::from("TIMESTAMP"), false);
    if layout == Layout::Batch {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from("PORTFOLIO"), false)
            .set_column_encoding(ColumnPath::from("PORTFOLIO"), Encoding::DELTA_BYTE_ARRAY);
    }
    for column in ["NAV", "NAV_Change"] {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::BYTE_STREAM_SPLIT);
    }
    builder.build()
}

/// Sorts `rows` into the archive's order: PORTFOLIO as text, then
/// TIMESTAMP.
pub fn sort(rows: &mut [ArchiveRow]) {
    rows.sort_by_cached_key(|row| (row.portfolio.to_string(), row.timestamp));
}

/// `rows` (in the archive's order, see [`sort`]) as a record batch of
/// [`SCHEMA`].
pub fn batch(rows: &[ArchiveRow]) -> RecordBatch {
    let portfolios = StringArray::from_iter_values(rows.iter().map(|row| row.portfolio.to_string()));
    let timestamps =
        TimestampMillisecondArray::from_iter_values(rows.iter().map(|row| row.timestamp * 1000)).with_timezone("UTC");
    let column = |value: fn(&ArchiveRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(value)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(portfolios),
        Arc::new(timestamps),
        column(|row| row.nav),
        column(|row| row.nav_change),
        column(|row| row.nav_change_pct),
    ];
    RecordBatch::try_new(Arc::clone(&SCHEMA), columns).expect("columns of the schema")
}

/// A Parquet file's bytes holding `batches` (each of [`SCHEMA`], together
/// in the archive's order), laid out as `layout` says.
pub fn to_parquet<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>, layout: Layout) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, Arc::clone(&SCHEMA), Some(properties(layout))).expect("the schema is writable");
    let batches: Vec<&RecordBatch> = batches.into_iter().collect();
    if layout == Layout::Windows {
        let all = match batches[..] {
            [one] => one.clone(),
            _ => concat_batches(&SCHEMA, batches).expect("batches of the schema"),
        };
        for window in by_window(&all) {
            writer.write(&window).expect("writing to memory cannot fail");
            // The window's rows end their row group.
            writer.flush().expect("writing to memory cannot fail");
        }
    } else {
        for batch in batches {
            writer.write(batch).expect("writing to memory cannot fail");
        }
    }
    writer.close().expect("writing to memory cannot fail");
    out
}

/// The rows of `batch` (in the archive's order) cut by [`WINDOW`]: a batch
/// per window, in time order, each still in the archive's order; the batch
/// as it is when its portfolios have too few rows a window
/// ([`super::dense`]).
fn by_window(batch: &RecordBatch) -> Vec<RecordBatch> {
    let times = batch.column(1).as_primitive::<TimestampMillisecondType>().values();
    let mut windows: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (row, time) in times.iter().enumerate() {
        let row = u32::try_from(row).expect("a batch of fewer than 2^32 rows");
        windows.entry(time.div_euclid(WINDOW * 1000)).or_default().push(row);
    }
    let portfolios = batch.column(0).as_string::<i32>();
    let runs = 1 + (1..batch.num_rows()).filter(|&row| portfolios.value(row - 1) != portfolios.value(row)).count();
    if windows.len() == 1 || !super::dense(batch.num_rows() as u64, (runs * windows.len()) as u64) {
        return vec![batch.clone()];
    }
    windows
        .into_values()
        .map(|rows| take_record_batch(batch, &UInt32Array::from(rows)).expect("rows of the batch"))
        .collect()
}

/// `rows` sorted and encoded as one Parquet file laid out as `layout` says.
pub fn rows_to_parquet(rows: &mut [ArchiveRow], layout: Layout) -> Vec<u8> {
    sort(rows);
    to_parquet([&batch(rows)], layout)
}
