//! Printing results as a table, CSV or JSON.

use std::io::{self, Write};

use clap::ValueEnum;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

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

/// A table for a terminal: a header and rows of cells; columns listed in
/// `right_aligned` (numbers) are aligned right.
pub fn print_table(header: &[&str], rows: &[Vec<String>], right_aligned: &[usize]) -> io::Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for row in rows {
        table.add_row(row.clone());
    }
    for &index in right_aligned {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(io::stdout().lock(), "{table}")
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

/// A number with 2 decimals and thousands separators, for tables.
pub fn money(value: f64) -> String {
    let text = format!("{value:.2}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_rounds_and_groups() {
        assert_eq!(money(5_384_010.0), "5,384,010.00");
        assert_eq!(money(-1234.567), "-1,234.57");
        assert_eq!(money(12.0), "12.00");
        assert_eq!(money(999.999), "1,000.00");
    }
}
