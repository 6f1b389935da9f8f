//! The fast path for files in the sink's exact layout: the header, then
//! `N.P,YYYY-MM-DD HH:MM:SS,nav,change,pct` lines. Lines are split with
//! `memchr`, the fixed-width timestamp is turned into seconds without a
//! general date parser, and the values go straight into Arrow arrays, which
//! are filtered and aggregated with the same kernels as the other paths.
//! The first line that deviates in any way (quoting, another time form,
//! an extra field, a bad number…) abandons the file to the general
//! arrow-csv reader, which also reports corrupt rows.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringBuilder, TimestampSecondArray};

use super::batch::{BATCH_ROWS, BatchConsumer, Columns, FILE_SCHEMA, Interval, deliver};
use crate::layout::HEADER;
use crate::layout::usable_nav;
use crate::market::epoch_seconds;

/// Why the fast path gave up.
pub enum Abandoned {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is not exactly in the sink's layout (at this line).
    Irregular(usize),
}

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// Columns being built.
struct Builder {
    columns: Columns,
    portfolios: StringBuilder,
    timestamps: Vec<i64>,
    navs: Vec<f64>,
    changes: Vec<f64>,
    pcts: Vec<f64>,
}

impl Builder {
    fn new(columns: Columns) -> Self {
        let capacity = BATCH_ROWS;
        let all = columns == Columns::All;
        Builder {
            columns,
            portfolios: StringBuilder::with_capacity(
                if all { capacity } else { 0 },
                if all { capacity * 6 } else { 0 },
            ),
            timestamps: Vec::with_capacity(capacity),
            navs: Vec::with_capacity(capacity),
            changes: Vec::with_capacity(if all { capacity } else { 0 }),
            pcts: Vec::with_capacity(if all { capacity } else { 0 }),
        }
    }

    fn len(&self) -> usize {
        self.timestamps.len()
    }

    fn finish(&mut self) -> RecordBatch {
        let timestamps: ArrayRef = Arc::new(TimestampSecondArray::from(std::mem::take(&mut self.timestamps)));
        let navs: ArrayRef = Arc::new(Float64Array::from(std::mem::take(&mut self.navs)));
        let (projection, arrays) = match self.columns {
            Columns::Stats => (vec![1, 2], vec![timestamps, navs]),
            Columns::All => {
                let changes: ArrayRef = Arc::new(Float64Array::from(std::mem::take(&mut self.changes)));
                let pcts: ArrayRef = Arc::new(Float64Array::from(std::mem::take(&mut self.pcts)));
                (
                    vec![0, 1, 2, 3, 4],
                    vec![Arc::new(self.portfolios.finish()) as ArrayRef, timestamps, navs, changes, pcts],
                )
            }
        };
        let schema = Arc::new(FILE_SCHEMA.project(&projection).expect("valid projection"));
        RecordBatch::try_new(schema, arrays).expect("arrays match the schema")
    }
}

/// Scans `path` if it is exactly in the sink's layout.
pub fn scan<C: BatchConsumer>(
    path: &Path,
    columns: Columns,
    interval: Interval,
    consumer: &mut C,
) -> Result<(), Abandoned> {
    let mut file = File::open(path).map_err(Abandoned::Io)?;
    let mut builder = Builder::new(columns);
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut line_number = 0;
    let mut at_end = false;
    let mut start = 0;
    loop {
        // Move the unfinished line to the front and read more after it.
        if !at_end {
            buffer.drain(..start);
            start = 0;
            let filled = buffer.len();
            buffer.resize(filled + CHUNK, 0);
            let read = file.read(&mut buffer[filled..]).map_err(Abandoned::Io)?;
            buffer.truncate(filled + read);
            at_end = read == 0;
        }
        while let Some(end) = memchr::memchr(b'\n', &buffer[start..])
            .map(|i| start + i)
            .or((at_end && start < buffer.len()).then_some(buffer.len()))
        {
            line_number += 1;
            let line = &buffer[start..end];
            start = (end + 1).min(buffer.len());
            if line_number == 1 {
                if line != &HEADER[..HEADER.len() - 1] {
                    return Err(Abandoned::Irregular(1));
                }
                continue;
            }
            parse_line(line, &mut builder).ok_or(Abandoned::Irregular(line_number))?;
            if builder.len() == BATCH_ROWS {
                deliver(&builder.finish(), None, interval, consumer);
            }
        }
        if at_end {
            break;
        }
    }
    if line_number == 0 {
        return Ok(()); // an empty file
    }
    if builder.len() > 0 {
        deliver(&builder.finish(), None, interval, consumer);
    }
    Ok(())
}

/// Parses one data line into the builder, or `None` if it deviates.
fn parse_line(line: &[u8], builder: &mut Builder) -> Option<()> {
    let comma = memchr::memchr(b',', line)?;
    let (portfolio, rest) = (&line[..comma], &line[comma + 1..]);
    if portfolio.is_empty() || !portfolio.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return None;
    }
    if rest.len() < 20 || rest[19] != b',' {
        return None;
    }
    let timestamp = epoch_seconds(&rest[..19])?;
    let mut numbers = rest[20..].split(|&b| b == b',');
    let nav = number(numbers.next()?).filter(|nav| usable_nav(*nav))?;
    let (change, pct) = (numbers.next()?, numbers.next()?);
    if numbers.next().is_some() {
        return None;
    }
    if builder.columns == Columns::All {
        builder.changes.push(number(change)?);
        builder.pcts.push(number(pct)?);
        builder.portfolios.append_value(std::str::from_utf8(portfolio).ok()?);
    } else if change.is_empty() || pct.is_empty() {
        return None;
    }
    builder.timestamps.push(timestamp);
    builder.navs.push(nav);
    Some(())
}

/// A finite decimal number.
fn number(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse::<f64>().ok().filter(|n| n.is_finite())
}
