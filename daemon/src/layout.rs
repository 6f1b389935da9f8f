//! The data folder's layout: the contract between the sink, which writes
//! it, and the query, which reads it.
//!
//! - `INVESTOR_{i}_PORTFOLIO_{p}.csv`: one file per portfolio, header
//!   [`HEADER`], one row per valuation ([`write_row`] writes one,
//!   [`parse_row`] reads one back, [`portfolio_files`] finds the files).
//!   These are the only `*.csv` files of the folder, so the seed's Spark
//!   App2 can read `*.csv`.
//! - `.sink/investors.csv` (`INVESTOR,NAME`): the investors' display names
//!   ([`names_path`]), outside the `*.csv` namespace of the folder.
//! - `rejected.jsonl`: messages the sink refused, with the reason.
//! - `.sink/` ([`sink_dir`]): the sink's own files — per partition of the
//!   valuations topic, `.sink/partitions/TOPIC/P/` ([`sink_partition_dir`]:
//!   lock, intent, checkpoint, identities log), the names, the archive's
//!   locks and staging.
//! - `.state/`: each investor's checkpoint ([`investor_state_path`]) and
//!   the lock of the process running it ([`investor_lock_path`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Timelike};

use crate::market::{InvestorId, PortfolioId, ValuationView, is_canonical, parse_timestamp};

/// The columns of every portfolio file, in order (the seed's), also the
/// archive's.
pub const COLUMNS: [&str; 5] = ["PORTFOLIO", "TIMESTAMP", "NAV", "NAV_Change", "NAV_Change_%"];

/// The header of every portfolio file: [`COLUMNS`].
pub const HEADER: &[u8] = b"PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n";

/// The file of rejected messages, in the data folder.
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// Where stockd before 0.2 kept the names: in the data folder itself, where
/// a reader of `*.csv` took it for a portfolio file.
pub const LEGACY_NAMES_FILE: &str = "investors.csv";

/// The investors' names file of the data folder `data`.
pub fn names_path(data: &Path) -> PathBuf {
    sink_dir(data).join("investors.csv")
}

/// The sink's own folder in the data folder `data`.
pub fn sink_dir(data: &Path) -> PathBuf {
    data.join(".sink")
}

/// The folder of `partition` of `topic` in the data folder `data`.
pub fn sink_partition_dir(data: &Path, topic: &str, partition: i32) -> PathBuf {
    data.join(sink_partition_relative(topic, partition))
}

/// [`sink_partition_dir`] relative to the data folder.
pub fn sink_partition_relative(topic: &str, partition: i32) -> PathBuf {
    Path::new(".sink").join("partitions").join(topic).join(partition.to_string())
}

/// The checkpoint of `investor` in the data folder `data`.
pub fn investor_state_path(data: &Path, investor: InvestorId) -> PathBuf {
    data.join(".state").join(format!("investor-{investor}.json"))
}

/// The lock of the process running `investor`, in the data folder `data`.
pub fn investor_lock_path(data: &Path, investor: InvestorId) -> PathBuf {
    data.join(".state").join(format!("investor-{investor}.lock"))
}

/// `INVESTOR_{i}_PORTFOLIO_{p}.csv`. Built from a validated id only, so it
/// can never name a path outside the data folder.
pub fn file_name(id: PortfolioId) -> String {
    format!("INVESTOR_{}_PORTFOLIO_{}.csv", id.investor, id.number)
}

/// The portfolio a file name stands for, if it is a portfolio file (the
/// inverse of [`file_name`]: canonical numbers ≥ 1 only).
pub fn portfolio_of(name: &str) -> Option<PortfolioId> {
    let (investor, portfolio) = name.strip_prefix("INVESTOR_")?.strip_suffix(".csv")?.split_once("_PORTFOLIO_")?;
    PortfolioId::new(investor.parse::<InvestorId>().ok()?, portfolio.parse::<InvestorId>().ok()?.get()).ok()
}

/// Every portfolio file of `data`, sorted by investor then portfolio;
/// anything else in the folder is ignored.
pub fn portfolio_files(data: &Path) -> std::io::Result<Vec<(PortfolioId, PathBuf)>> {
    let mut files: Vec<(PortfolioId, PathBuf)> = std::fs::read_dir(data)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let id = portfolio_of(entry.file_name().to_str()?)?;
            Some((id, entry.path()))
        })
        .collect();
    files.sort_by_key(|(id, _)| *id);
    Ok(files)
}

/// The largest NAV magnitude the statistics accept. The variance sums
/// squared deviations: with |NAV| ≤ 1e100 those stay below 1e201 and their
/// sum over any number of rows a file can hold stays finite. A larger (or a
/// non-finite) NAV is never written by the sink: such a row is corrupt.
pub const MAX_NAV: f64 = 1e100;

/// Whether `nav` can be a row's NAV: finite and within [`MAX_NAV`].
pub fn usable_nav(nav: f64) -> bool {
    nav.is_finite() && nav.abs() <= MAX_NAV
}

/// One data row of a portfolio file, parsed.
pub struct Row {
    /// PORTFOLIO as written.
    pub portfolio: String,
    /// TIMESTAMP, seconds since the epoch (UTC).
    pub at: i64,
    /// NAV, NAV_Change, NAV_Change_%.
    pub numbers: [f64; 3],
}

/// Parses a data row of a portfolio file (without its line end); a row with
/// a wrong field count, a TIMESTAMP that is not a time, or a number that is
/// not finite (a NAV beyond [`MAX_NAV`]) is corrupt, and the reason says why.
pub fn parse_row(text: &str) -> Result<Row, String> {
    let fields: Vec<&str> = text.split(',').collect();
    if fields.len() != 5 {
        return Err(format!("{} fields instead of 5", fields.len()));
    }
    let at = parse_timestamp(fields[1]).map_err(|_| format!("TIMESTAMP {:?} is not a time", fields[1]))?;
    let mut numbers = [0.0; 3];
    for (slot, (name, text)) in numbers.iter_mut().zip(COLUMNS[2..].iter().zip(&fields[2..])) {
        *slot = text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| if *name == "NAV" { usable_nav(*n) } else { n.is_finite() })
            .ok_or_else(|| format!("{name} {text:?} is not a finite number"))?;
    }
    Ok(Row { portfolio: fields[0].to_string(), at: at.and_utc().timestamp(), numbers })
}

/// Appends `valuation` as a CSV row: TIMESTAMP in the canonical form,
/// numbers in plain decimal (never an exponent), the shortest form that
/// reads back to the same value.
pub fn write_row(out: &mut Vec<u8>, valuation: &ValuationView<'_>) {
    let _ = write!(out, "{},", valuation.portfolio);
    if is_canonical(&valuation.timestamp) {
        out.extend_from_slice(valuation.timestamp.as_bytes());
    } else {
        let at = valuation.at;
        let (date, time) = (at.date(), at.time());
        let _ = write!(
            out,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            date.year(),
            date.month(),
            date.day(),
            time.hour(),
            time.minute(),
            time.second()
        );
    }
    let _ = writeln!(out, ",{},{},{}", valuation.nav + 0.0, valuation.nav_change + 0.0, valuation.nav_change_pct + 0.0);
}

/// Reads an `INVESTOR,NAME` file; a missing file is empty, rows that cannot
/// be read are skipped with a warning.
pub fn read_names(path: &Path) -> BTreeMap<InvestorId, String> {
    let mut names = BTreeMap::new();
    let Ok(mut reader) = csv::Reader::from_path(path) else { return names };
    for (line, record) in reader.records().enumerate() {
        let parsed = record.ok().and_then(|r| Some((r.get(0)?.parse::<InvestorId>().ok()?, r.get(1)?.to_string())));
        match parsed {
            Some((id, name)) => {
                names.insert(id, name);
            }
            None => tracing::warn!(file = %path.display(), line = line + 2, "unreadable row skipped"),
        }
    }
    names
}

/// The names of the data folder `data`, for a reader: from
/// `.sink/investors.csv`, or from a folder not migrated yet, its legacy
/// `investors.csv`.
pub fn load_names(data: &Path) -> BTreeMap<InvestorId, String> {
    let path = names_path(data);
    if path.exists() { read_names(&path) } else { read_names(&data.join(LEGACY_NAMES_FILE)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_lists_the_columns() {
        assert_eq!(HEADER, format!("{}\n", COLUMNS.join(",")).as_bytes());
    }

    #[test]
    fn rows_are_plain_decimal_and_names_follow_the_seed() {
        let v = ValuationView::decode(
            br#"{"PORTFOLIO":"12.3","TIMESTAMP":"2026-1-2 3:04:05","NAV":1e21,"NAV_Change":-0.0,"NAV_Change_%":0.0001}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_row(&mut out, &v);
        assert_eq!(String::from_utf8(out).unwrap(), "12.3,2026-01-02 03:04:05,1000000000000000000000,0,0.0001\n");
        assert_eq!(file_name(v.portfolio), "INVESTOR_12_PORTFOLIO_3.csv");
        let canonical = ValuationView::decode(
            br#"{"PORTFOLIO":"1.1","TIMESTAMP":"2026-11-24 09:40:20","NAV":590240,"NAV_Change":-1.5,"NAV_Change_%":-0.25}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_row(&mut out, &canonical);
        assert_eq!(String::from_utf8(out).unwrap(), "1.1,2026-11-24 09:40:20,590240,-1.5,-0.25\n");
    }

    #[test]
    fn only_canonical_portfolio_file_names_count() {
        assert_eq!(portfolio_of("INVESTOR_12_PORTFOLIO_3.csv").map(|p| p.to_string()).as_deref(), Some("12.3"));
        for name in [
            "INVESTOR_0_PORTFOLIO_1.csv",
            "INVESTOR_1_PORTFOLIO_01.csv",
            "INVESTOR_1_PORTFOLIO_1.csv.tmp",
            "investors.csv",
            "rejected.jsonl",
            "INVESTOR_1_PORTFOLIO_.csv",
            "INVESTOR_x_PORTFOLIO_1.csv",
        ] {
            assert_eq!(portfolio_of(name), None, "{name}");
        }
    }

    #[test]
    fn names_are_read_from_the_sink_folder_else_the_legacy_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_NAMES_FILE), "INVESTOR,NAME\n1,Old\n").unwrap();
        assert_eq!(load_names(dir.path())[&InvestorId::new(1).unwrap()], "Old");
        std::fs::create_dir_all(dir.path().join(".sink")).unwrap();
        std::fs::write(names_path(dir.path()), "INVESTOR,NAME\n1,New\n").unwrap();
        assert_eq!(load_names(dir.path())[&InvestorId::new(1).unwrap()], "New");
    }
}
