//! Formatting for people, shared by the commands and the query report:
//! money with 2 decimals and thousands separators, and text tables.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

/// A number with 2 decimals and thousands separators, for tables; a
/// non-finite number (never a NAV the sink wrote) shows as `n/a`.
pub fn money(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
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

/// A byte count in decimal units, three significant digits: `224 GB`,
/// `1.50 MB`, `512 B`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if count < 1000 {
        return format!("{count} B");
    }
    let mut value = count as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// A text table: a header and rows of cells; the columns listed in
/// `right_aligned` (numbers) are aligned right.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>, right_aligned: &[usize]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for &index in right_aligned {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_decimal_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1500), "1.50 kB");
        assert_eq!(bytes(224_000_000_000), "224 GB");
        assert_eq!(bytes(67_300_000_000), "67.3 GB");
    }

    #[test]
    fn money_rounds_and_groups() {
        assert_eq!(money(5_384_010.0), "5,384,010.00");
        assert_eq!(money(-1234.567), "-1,234.57");
        assert_eq!(money(12.0), "12.00");
        assert_eq!(money(999.999), "1,000.00");
        assert_eq!(money(f64::NAN), "n/a");
        assert_eq!(money(f64::INFINITY), "n/a");
    }

    #[test]
    fn tables_align_numbers_right() {
        let text = table(&["A", "NUMBER"], [vec!["x".to_string(), "1.00".to_string()]], &[1]);
        assert!(text.contains("│ x ┆   1.00 │"), "{text}");
    }
}
