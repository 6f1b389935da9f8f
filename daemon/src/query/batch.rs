//! The vocabulary every scan path shares: the file schema, the columns a
//! scan produces, the interval filter, the consumer of batches, and what
//! makes a NAV usable.

use std::sync::{Arc, LazyLock};

use crate::layout::COLUMNS;
use arrow::array::{BooleanArray, RecordBatch, TimestampSecondArray};
use arrow::compute::kernels::cmp;
use arrow::compute::{and, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

/// Rows per record batch.
pub const BATCH_ROWS: usize = 64 * 1024;

/// The columns of a portfolio file, in order.
pub static FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(COLUMNS[0], DataType::Utf8, true),
        Field::new(COLUMNS[1], DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new(COLUMNS[2], DataType::Float64, true),
        Field::new(COLUMNS[3], DataType::Float64, true),
        Field::new(COLUMNS[4], DataType::Float64, true),
    ]))
});

/// Which columns a scan produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// TIMESTAMP and NAV: enough for the statistics.
    Stats,
    /// All five.
    All,
}

impl Columns {
    pub(crate) fn projection(self) -> Vec<usize> {
        match self {
            Columns::Stats => vec![1, 2],
            Columns::All => vec![0, 1, 2, 3, 4],
        }
    }
}

/// Both ends included; `None`: open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interval {
    /// Seconds since the epoch (UTC), or open.
    pub from: Option<i64>,
    /// Seconds since the epoch (UTC), or open.
    pub to: Option<i64>,
}

/// Receives the valid rows in the interval, batch by batch.
pub trait BatchConsumer {
    /// One batch (columns per the scan's [`Columns`]).
    fn take(&mut self, batch: &RecordBatch);
}

/// Filters `batch` to the complete rows in the interval and hands it on.
pub(crate) fn deliver<C: BatchConsumer>(
    batch: &RecordBatch,
    complete: Option<BooleanArray>,
    interval: Interval,
    consumer: &mut C,
) {
    let timestamps = batch.column(timestamp_index(batch)).clone();
    let mut mask = complete;
    for (bound, compare) in [(interval.from, cmp::gt_eq as CmpKernel), (interval.to, cmp::lt_eq as CmpKernel)] {
        if let Some(bound) = bound {
            let within = compare(&timestamps, &TimestampSecondArray::new_scalar(bound)).expect("timestamps");
            mask = Some(match mask {
                Some(mask) => and(&mask, &within).expect("same length"),
                None => within,
            });
        }
    }
    match mask {
        None => consumer.take(batch),
        Some(mask) if mask.true_count() == batch.num_rows() => consumer.take(batch),
        Some(mask) if mask.true_count() == 0 => {}
        Some(mask) => consumer.take(&filter_record_batch(batch, &mask).expect("mask of the batch's length")),
    }
}

type CmpKernel = fn(&dyn arrow::array::Datum, &dyn arrow::array::Datum) -> Result<BooleanArray, ArrowError>;

fn timestamp_index(batch: &RecordBatch) -> usize {
    batch.schema().index_of("TIMESTAMP").expect("every projection has TIMESTAMP")
}
