//! Rendering an answer: a table for people (2 decimals), CSV and JSON for
//! scripts (full precision, stable field names).

use std::io::Write as _;

use serde::Serialize;

use rayon::prelude::*;

use super::{Answer, PortfolioStats, Query, Row};
use crate::format::{money, table as text_table};
use crate::layout::COLUMNS;
use crate::market::format_epoch as time;
use crate::statistics::Trend;

/// The answer as one JSON object, streamed to `out`:
/// `{"portfolio", "from", "to", "rows": [{"PORTFOLIO", "TIMESTAMP", "NAV",
/// "NAV_Change", "NAV_Change_%"}], "stats": [{"investor", "name",
/// "portfolio", "rows", "avg", "stddev", "spread", "return",
/// "max_drawdown", "drawdown_peak", "drawdown_trough", "volatility"}],
/// "skipped_rows"}`; `null` where a statistic is undefined (see
/// [`crate::statistics::trend`]).
pub fn write_json(out: impl std::io::Write, query: &Query, answer: &Answer) -> serde_json::Result<()> {
    let json = JsonAnswer {
        portfolio: query.portfolio.map(|p| p.to_string()),
        from: query.interval.from.map(time),
        to: query.interval.to.map(time),
        rows: JsonRows(&answer.rows),
        stats: answer
            .stats
            .iter()
            .map(|s| JsonStat {
                investor: s.portfolio.investor.get(),
                name: &s.name,
                portfolio: s.portfolio.to_string(),
                rows: s.moments.count,
                avg: s.moments.mean,
                stddev: s.moments.stddev(),
                spread: s.moments.spread(),
                trend: TrendJson::of(&s.trend),
            })
            .collect(),
        skipped_rows: answer.skipped_rows,
    };
    serde_json::to_writer_pretty(out, &json)
}

#[derive(Serialize)]
struct JsonAnswer<'a> {
    portfolio: Option<String>,
    from: Option<String>,
    to: Option<String>,
    rows: JsonRows<'a>,
    stats: Vec<JsonStat<'a>>,
    skipped_rows: u64,
}

#[derive(Serialize)]
struct JsonStat<'a> {
    investor: u32,
    name: &'a str,
    portfolio: String,
    rows: u64,
    avg: f64,
    stddev: Option<f64>,
    spread: Option<f64>,
    #[serde(flatten)]
    trend: TrendJson,
}

/// A trend's statistics as the JSON outputs name them: `return`,
/// `max_drawdown` (0 for a series that never fell), `drawdown_peak` and
/// `drawdown_trough` (times, when it fell), `volatility`; `null` where
/// undefined (see [`crate::statistics::trend`]).
#[derive(Debug, Serialize)]
pub struct TrendJson {
    #[serde(rename = "return")]
    total_return: Option<f64>,
    max_drawdown: Option<f64>,
    drawdown_peak: Option<String>,
    drawdown_trough: Option<String>,
    volatility: Option<f64>,
}

impl TrendJson {
    /// The fields of `trend`.
    pub fn of(trend: &Trend) -> TrendJson {
        let fall = trend.max_drawdown();
        let at = |point: fn(&crate::statistics::Drawdown) -> i64| fall.flatten().map(|f| time(point(&f)));
        TrendJson {
            total_return: trend.total_return(),
            max_drawdown: trend.max_drawdown_fraction(),
            drawdown_peak: at(|f| f.peak.at),
            drawdown_trough: at(|f| f.trough.at),
            volatility: trend.volatility(),
        }
    }
}

/// The rows, serialised one by one (never all at once in memory as JSON).
struct JsonRows<'a>(&'a [Row]);

#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(rename = "PORTFOLIO")]
    portfolio: &'a str,
    #[serde(rename = "TIMESTAMP")]
    timestamp: String,
    #[serde(rename = "NAV")]
    nav: f64,
    #[serde(rename = "NAV_Change")]
    nav_change: f64,
    #[serde(rename = "NAV_Change_%")]
    nav_change_pct: f64,
}

impl Serialize for JsonRows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|row| JsonRow {
            portfolio: &row.portfolio,
            timestamp: time(row.timestamp),
            nav: row.nav,
            nav_change: row.nav_change,
            nav_change_pct: row.nav_change_pct,
        }))
    }
}

/// CSV, streamed to `out`: the portfolio's rows (when one was asked for),
/// a blank line, then the statistics (a statistic's field is empty when it
/// is undefined).
pub fn write_csv(out: impl std::io::Write, query: &Query, answer: &Answer) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    if query.portfolio.is_some() {
        out.write_all(b"PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n")?;
        for row in &answer.rows {
            writeln!(
                out,
                "{},{},{},{},{}",
                row.portfolio,
                time(row.timestamp),
                row.nav,
                row.nav_change,
                row.nav_change_pct
            )?;
        }
        if query.stats {
            out.write_all(b"\n")?;
        }
    }
    if query.stats {
        out.write_all(
            b"INVESTOR,NAME,PORTFOLIO,ROWS,AVG,STDDEV,SPREAD,RETURN,MAX_DRAWDOWN,DRAWDOWN_PEAK,DRAWDOWN_TROUGH,VOLATILITY\n",
        )?;
        // A million lines is a common answer: formatted on all cores, a
        // chunk of lines each, and written in order.
        let threads = rayon::current_num_threads().max(1);
        for group in answer.stats.chunks(CSV_CHUNK * threads) {
            let parts: Vec<Vec<u8>> = group.par_chunks(CSV_CHUNK).map(csv_lines).collect();
            for part in parts {
                out.write_all(&part)?;
            }
        }
    }
    out.flush()
}

/// Statistics lines formatted at a time by one thread.
const CSV_CHUNK: usize = 32 * 1024;

/// The CSV lines of `stats`, written field by field: the name, the only
/// field that may need quoting, is quoted once per investor.
fn csv_lines(stats: &[PortfolioStats]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stats.len() * 256);
    let mut buffer = ryu::Buffer::new();
    let mut name: Option<(crate::market::InvestorId, Vec<u8>)> = None;
    for s in stats {
        let investor = s.portfolio.investor;
        if name.as_ref().is_none_or(|(cached, _)| *cached != investor) {
            name = Some((investor, csv_field(&s.name)));
        }
        let quoted = &name.as_ref().expect("just set").1;
        write!(out, "{investor},").expect("writing to memory");
        out.extend_from_slice(quoted);
        write!(out, ",{},{}", s.portfolio, s.moments.count).expect("writing to memory");
        for value in [
            Some(s.moments.mean),
            s.moments.stddev(),
            s.moments.spread(),
            s.trend.total_return(),
            s.trend.max_drawdown_fraction(),
        ] {
            out.push(b',');
            out.extend_from_slice(number(&mut buffer, value).as_bytes());
        }
        match s.trend.max_drawdown().flatten() {
            Some(f) => {
                write!(out, ",{},{}", time(f.peak.at), time(f.trough.at)).expect("writing to memory");
            }
            None => out.extend_from_slice(b",,"),
        }
        out.push(b',');
        out.extend_from_slice(number(&mut buffer, s.trend.volatility()).as_bytes());
        out.push(b'\n');
    }
    out
}

/// `text` as one CSV field: quoted (its quotes doubled) when it holds a
/// comma, a quote or a line break, as is otherwise.
fn csv_field(text: &str) -> Vec<u8> {
    if !text.contains([',', '"', '\n', '\r']) {
        return text.as_bytes().to_vec();
    }
    format!("\"{}\"", text.replace('"', "\"\"")).into_bytes()
}

/// `value` in full precision (the shortest text that reads back as the
/// same double), empty when undefined.
fn number(buffer: &mut ryu::Buffer, value: Option<f64>) -> &str {
    value.map_or("", |value| buffer.format(value))
}

/// A fraction in percent, 2 decimals; empty when undefined.
fn percent(fraction: Option<f64>) -> String {
    fraction.map(|v| format!("{:.2}", v * 100.0)).unwrap_or_default()
}

/// Tables for people: numbers rounded to 2 decimals; spread, return,
/// maximum drawdown (MAX DD) and volatility (VOL, per interval) in percent.
pub fn table(query: &Query, answer: &Answer) -> String {
    let mut out = String::new();
    if let Some(portfolio) = query.portfolio {
        out.push_str(&format!("Portfolio {portfolio}: {} row(s)\n", answer.rows.len()));
        let rows: Vec<Vec<String>> = answer
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.portfolio.clone(),
                    time(r.timestamp),
                    money(r.nav),
                    money(r.nav_change),
                    format!("{:.2}", r.nav_change_pct),
                ]
            })
            .collect();
        out.push_str(&text_table(&COLUMNS, rows, &[2, 3, 4]));
        out.push('\n');
    }
    if query.stats {
        out.push_str(&format!("{} portfolio(s) with rows in the interval\n", answer.stats.len()));
        let rows: Vec<Vec<String>> = answer
            .stats
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.portfolio.to_string(),
                    s.moments.count.to_string(),
                    money(s.moments.mean),
                    s.moments.stddev().map(money).unwrap_or_default(),
                    percent(s.moments.spread()),
                    percent(s.trend.total_return()),
                    percent(s.trend.max_drawdown_fraction()),
                    percent(s.trend.volatility()),
                ]
            })
            .collect();
        out.push_str(&text_table(
            &["INVESTOR", "PORTFOLIO", "ROWS", "AVG NAV", "STDDEV NAV", "SPREAD %", "RETURN %", "MAX DD %", "VOL %"],
            rows,
            &[2, 3, 4, 5, 6, 7, 8],
        ));
        out.push('\n');
    }
    if answer.skipped_rows > 0 {
        out.push_str(&format!("{} corrupt row(s) skipped (see the warnings on stderr)\n", answer.skipped_rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_quoted_only_when_it_must_be_and_reads_back() {
        for name in ["Investor 7", "Smith, Jones & Co", "the \"best\" fund", "two\nlines", ""] {
            let line = [b"1,".to_vec(), csv_field(name), b",2\n".to_vec()].concat();
            let record = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_slice())
                .records()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!((record.len(), &record[1]), (3, name), "{name:?}");
        }
        assert_eq!(csv_field("Investor 7"), b"Investor 7");
    }
}
