//! Reading one portfolio file into Arrow record batches, filtered to an
//! interval.
//!
//! The fast path is `arrow-csv` with the fixed schema (TIMESTAMP parsed to
//! an Arrow timestamp in seconds), streamed in batches, filtered with the
//! comparison kernels. Empty fields come back as nulls: those rows are
//! skipped and reported. A file the fast path cannot parse (a wrong field
//! count, a number or time that does not parse) is read again by the
//! careful path, line by line, which skips and reports each bad line and
//! keeps the others. Either way the consumer sees only valid rows in the
//! interval; on a fallback it is started afresh, so nothing is counted
//! twice.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampSecondArray};
use arrow::compute::{and, is_not_null};
use arrow::error::ArrowError;

use super::batch::{BATCH_ROWS, BatchConsumer, Columns, FILE_SCHEMA, Interval, deliver};
use crate::layout::{Row, parse_row, usable_nav};

/// What a scan skipped.
#[derive(Debug, Default)]
pub struct Skipped {
    /// Rows skipped as corrupt.
    pub rows: u64,
    /// One warning per skipped row (file and line), capped.
    pub warnings: Vec<String>,
}

/// Warnings kept per file; the count goes on.
const MAX_WARNINGS: usize = 20;

impl Skipped {
    fn note(&mut self, path: &Path, line: usize, why: &str) {
        self.rows += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(format!("{}: line {line}: {why}; row skipped", path.display()));
        } else if self.warnings.len() == MAX_WARNINGS {
            self.warnings.push(format!("{}: more corrupt rows skipped", path.display()));
        }
    }
}

/// Scans `path` into a consumer made by `make` (made again whenever a path
/// gives up and the next one starts over): the strict path for the sink's
/// own layout, then arrow-csv, then line by line.
pub fn scan<C: BatchConsumer>(
    path: &Path,
    columns: Columns,
    interval: Interval,
    make: impl Fn() -> C,
) -> std::io::Result<(C, Skipped)> {
    let mut consumer = make();
    match super::strict::scan(path, columns, interval, &mut consumer) {
        Ok(()) => return Ok((consumer, Skipped::default())),
        Err(super::strict::Abandoned::Io(error)) => return Err(error),
        Err(super::strict::Abandoned::Irregular(line)) => {
            tracing::debug!(file = %path.display(), line, "not in the sink's exact layout: reading it as general CSV");
            consumer = make();
        }
    }
    match fast(path, columns, interval, &mut consumer) {
        Ok(skipped) => Ok((consumer, skipped)),
        Err(ScanFailure::Io(error)) => Err(error),
        Err(ScanFailure::Parse(error)) => {
            tracing::debug!(file = %path.display(), "reading line by line: {error}");
            let mut consumer = make();
            let skipped = careful(path, columns, interval, &mut consumer)?;
            Ok((consumer, skipped))
        }
    }
}

enum ScanFailure {
    Io(std::io::Error),
    Parse(ArrowError),
}

fn fast<C: BatchConsumer>(
    path: &Path,
    columns: Columns,
    interval: Interval,
    consumer: &mut C,
) -> Result<Skipped, ScanFailure> {
    let file = File::open(path).map_err(ScanFailure::Io)?;
    let reader = arrow::csv::ReaderBuilder::new(Arc::clone(&FILE_SCHEMA))
        .with_header(true)
        .with_batch_size(BATCH_ROWS)
        .with_projection(columns.projection())
        .build(file)
        .map_err(ScanFailure::Parse)?;
    let mut skipped = Skipped::default();
    // Line 1 is the header.
    let mut first_line = 2;
    for batch in reader {
        let batch = batch.map_err(|error| match error {
            ArrowError::IoError(_, io) => ScanFailure::Io(io),
            other => ScanFailure::Parse(other),
        })?;
        if let Some(why) = unusable_number(&batch) {
            // Rare (the sink never writes one): the careful path locates it.
            return Err(ScanFailure::Parse(ArrowError::ParseError(why)));
        }
        let rows = batch.num_rows();
        let complete = complete_rows(&batch);
        if let Some(complete) = &complete {
            for (index, ok) in complete.iter().enumerate() {
                if ok != Some(true) {
                    skipped.note(path, first_line + index, "empty field");
                }
            }
        }
        deliver(&batch, complete, interval, consumer);
        first_line += rows;
    }
    Ok(skipped)
}

/// Why a batch holds a number no row may hold (a NAV that is not
/// [`usable_nav`], a NAV_Change or NAV_Change_% that is not finite), if it
/// does.
fn unusable_number(batch: &RecordBatch) -> Option<String> {
    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let Some(numbers) = column.as_any().downcast_ref::<Float64Array>() else { continue };
        let usable = |n: f64| if field.name() == "NAV" { usable_nav(n) } else { n.is_finite() };
        if numbers.iter().flatten().any(|n| !usable(n)) {
            return Some(format!("{} out of range", field.name()));
        }
    }
    None
}

/// Which rows have every field, or `None` when all have.
fn complete_rows(batch: &RecordBatch) -> Option<BooleanArray> {
    let incomplete = batch.columns().iter().any(|column| column.null_count() > 0);
    if !incomplete {
        return None;
    }
    let masks: Vec<BooleanArray> =
        batch.columns().iter().map(|c| is_not_null(c.as_ref()).expect("any array")).collect();
    Some(masks.iter().skip(1).fold(masks[0].clone(), |all, mask| and(&all, mask).expect("same length")))
}

fn careful<C: BatchConsumer>(
    path: &Path,
    columns: Columns,
    interval: Interval,
    consumer: &mut C,
) -> std::io::Result<Skipped> {
    let mut skipped = Skipped::default();
    let mut pending: Vec<Row> = Vec::new();
    for (index, line) in BufReader::new(File::open(path)?).split(b'\n').enumerate() {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        if index == 0 || text.is_empty() {
            continue;
        }
        match parse_row(text) {
            Ok(parsed) => pending.push(parsed),
            Err(why) => skipped.note(path, index + 1, &why),
        }
        if pending.len() == BATCH_ROWS {
            deliver(&to_batch(&pending, columns), None, interval, consumer);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        deliver(&to_batch(&pending, columns), None, interval, consumer);
    }
    Ok(skipped)
}

fn to_batch(lines: &[Row], columns: Columns) -> RecordBatch {
    let timestamps: ArrayRef = Arc::new(TimestampSecondArray::from_iter_values(lines.iter().map(|l| l.at)));
    let number =
        |i: usize| -> ArrayRef { Arc::new(Float64Array::from_iter_values(lines.iter().map(|l| l.numbers[i]))) };
    let schema = Arc::new(FILE_SCHEMA.project(&columns.projection()).expect("valid projection"));
    let arrays = match columns {
        Columns::Stats => vec![timestamps, number(0)],
        Columns::All => {
            let portfolios: ArrayRef =
                Arc::new(StringArray::from_iter_values(lines.iter().map(|l| l.portfolio.as_str())));
            vec![portfolios, timestamps, number(0), number(1), number(2)]
        }
    };
    RecordBatch::try_new(schema, arrays).expect("arrays match the schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::parse_timestamp;

    /// Collects NAVs and timestamps.
    #[derive(Default)]
    struct Collect(Vec<(i64, f64)>);

    impl BatchConsumer for Collect {
        fn take(&mut self, batch: &RecordBatch) {
            let ts = batch.column(0).as_any().downcast_ref::<TimestampSecondArray>().unwrap();
            let nav = batch.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
            self.0.extend(ts.values().iter().copied().zip(nav.values().iter().copied()));
        }
    }

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("INVESTOR_1_PORTFOLIO_1.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const HEADER: &str = "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n";

    fn at(text: &str) -> i64 {
        parse_timestamp(text).unwrap().and_utc().timestamp()
    }

    #[test]
    fn filters_to_the_interval_both_ends_included() {
        let (_dir, path) = file(&format!(
            "{HEADER}1.1,2026-11-24 09:00:00,10,0,0\n1.1,2026-11-24 09:00:20,20,10,100\n1.1,2026-11-24 09:00:40,30,10,50"
        ));
        let interval = Interval { from: Some(at("2026-11-24 09:00:20")), to: Some(at("2026-11-24 09:00:40")) };
        let (collected, skipped) = scan(&path, Columns::Stats, interval, Collect::default).unwrap();
        assert_eq!(collected.0, [(at("2026-11-24 09:00:20"), 20.0), (at("2026-11-24 09:00:40"), 30.0)]);
        assert_eq!(skipped.rows, 0);
        let (all, _) = scan(&path, Columns::Stats, Interval::default(), Collect::default).unwrap();
        assert_eq!(all.0.len(), 3, "no trailing newline is fine");
    }

    #[test]
    fn corrupt_rows_are_skipped_with_file_and_line() {
        let (_dir, path) = file(&format!(
            "{HEADER}1.1,2026-11-24 09:00:00,10,0,0\n1.1,2026-11-24 09:00:20,abc,0,0\n1.1,2026-11-24\n1.1,yesterday,5,0,0\n1.1,2026-11-24 09:01:00,40,10,33\n"
        ));
        let (collected, skipped) = scan(&path, Columns::Stats, Interval::default(), Collect::default).unwrap();
        assert_eq!(
            collected.0.iter().map(|r| r.1).collect::<Vec<_>>(),
            [10.0, 40.0],
            "counted once, after the restart"
        );
        assert_eq!(skipped.rows, 3);
        assert!(
            skipped.warnings[0].ends_with("line 3: NAV \"abc\" is not a finite number; row skipped"),
            "{:?}",
            skipped.warnings
        );
        assert!(skipped.warnings[1].contains("line 4: 2 fields instead of 5"), "{:?}", skipped.warnings);
        assert!(skipped.warnings[2].contains("line 5: TIMESTAMP \"yesterday\""), "{:?}", skipped.warnings);
    }

    #[test]
    fn non_finite_and_overflowing_navs_are_corrupt_rows() {
        let text = format!(
            "{HEADER}1.1,2026-11-24 09:40:20,100.5,0,0\n1.1,2026-11-24 09:40:40,NaN,0,0\n\
             1.1,2026-11-24 09:41:00,inf,0,0\n1.1,2026-11-24 09:41:20,1e308,0,0\n\
             1.1,2026-11-24 09:41:40,1e308,0,0\n1.1,2026-11-24 09:42:00,99.5,-1,-1\n"
        );
        let (_dir, path) = file(&text);
        let (collected, skipped) = scan(&path, Columns::Stats, Interval::default(), Collect::default).unwrap();
        let navs: Vec<f64> = collected.0.iter().map(|(_, nav)| *nav).collect();
        assert_eq!(navs, [100.5, 99.5], "only the finite, summable NAVs of complete rows");
        assert_eq!(skipped.rows, 4);
        for (warning, line) in skipped.warnings.iter().zip([3, 4, 5, 6]) {
            assert!(warning.contains(&format!("line {line}: ")), "{warning}");
        }
        assert!(skipped.warnings[0].contains("NAV \"NaN\" is not a finite number"), "{:?}", skipped.warnings);
    }

    #[test]
    fn empty_fields_are_skipped_on_the_fast_path() {
        let (_dir, path) = file(&format!("{HEADER}1.1,2026-11-24 09:00:00,,0,0\n1.1,2026-11-24 09:00:20,20,10,100\n"));
        let (collected, skipped) = scan(&path, Columns::All, Interval::default(), || Rows(Vec::new())).unwrap();
        assert_eq!(collected.0, [20.0]);
        assert_eq!(skipped.rows, 1);
        assert!(skipped.warnings[0].contains("line 2: empty field"), "{:?}", skipped.warnings);
    }

    struct Rows(Vec<f64>);

    impl BatchConsumer for Rows {
        fn take(&mut self, batch: &RecordBatch) {
            let nav = batch.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
            self.0.extend(nav.values().iter());
        }
    }

    #[test]
    fn empty_and_header_only_files_have_no_rows() {
        for text in ["", HEADER, "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%"] {
            let (_dir, path) = file(text);
            let (collected, skipped) = scan(&path, Columns::Stats, Interval::default(), Collect::default).unwrap();
            assert!(collected.0.is_empty() && skipped.rows == 0, "{text:?}");
        }
    }
}
