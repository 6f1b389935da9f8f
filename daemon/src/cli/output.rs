//! Printing results as a table, CSV or JSON.

use std::io::{self, Write};

use clap::ValueEnum;

/// How a command prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people (numbers rounded to 2 decimals).
    Table,
    /// CSV with a header row, full precision.
    Csv,
    /// JSON, full precision.
    Json,
}

/// A table for a terminal (see [`crate::format::table`]) to stdout.
pub fn print_table(header: &[&str], rows: &[Vec<String>], right_aligned: &[usize]) -> io::Result<()> {
    writeln!(io::stdout().lock(), "{}", crate::format::table(header, rows.iter().cloned(), right_aligned))
}

/// CSV with a header row to stdout.
pub fn print_csv(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(io::stdout().lock());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Pretty JSON to stdout, with a final newline.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
