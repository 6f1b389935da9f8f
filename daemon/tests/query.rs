//! The query (App2) against generated data: every statistic agrees with an
//! independent, straightforward computation over the CSV rows; intervals,
//! corrupt lines, ordering, output formats and every error message.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use stockd::market::{PortfolioId, parse_timestamp};
use stockd::query::batch::Interval;
use stockd::query::generate::{Dataset, generate};
use stockd::query::{Answer, Query, run};

fn secs(text: &str) -> i64 {
    parse_timestamp(text).unwrap().and_utc().timestamp()
}

/// (timestamp, NAV) of every row of every portfolio file, read with the csv
/// crate, skipping rows that do not parse.
fn rows_by_portfolio(data: &Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(id) = stockd::layout::portfolio_of(&name) else { continue };
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(&path).unwrap();
        let rows = reader
            .records()
            .filter_map(|r| r.ok())
            .filter(|r| r.len() == 5)
            .filter_map(|r| Some((parse_timestamp(&r[1]).ok()?.and_utc().timestamp(), r[2].parse::<f64>().ok()?)))
            .collect();
        all.insert(id.to_string(), rows);
    }
    all
}

/// What a user would check, computed the straightforward way.
struct Expected {
    count: u64,
    mean: f64,
    stddev: Option<f64>,
    spread: f64,
    /// last / first − 1.
    total_return: f64,
    /// (fraction, peak time, trough time): the largest fall from the
    /// running peak; (0, None, None) for a series that never fell.
    drawdown: (f64, Option<i64>, Option<i64>),
    /// Sample stddev of the returns between consecutive rows.
    volatility: Option<f64>,
}

fn sample_stddev(values: &[f64]) -> Option<f64> {
    let n = values.len() as f64;
    let mean = values.iter().fold(0.0, |a, x| a + x) / n;
    (values.len() > 1).then(|| (values.iter().fold(0.0, |a, x| a + (x - mean) * (x - mean)) / (n - 1.0)).sqrt())
}

/// The statistics the straightforward way, over the rows in time order.
fn expected(rows: &[(i64, f64)], from: Option<i64>, to: Option<i64>) -> Option<Expected> {
    let mut kept: Vec<(i64, f64)> =
        rows.iter().filter(|(t, _)| from.is_none_or(|f| *t >= f) && to.is_none_or(|e| *t <= e)).copied().collect();
    if kept.is_empty() {
        return None;
    }
    kept.sort_by_key(|r| r.0);
    let navs: Vec<f64> = kept.iter().map(|r| r.1).collect();
    let n = navs.len() as f64;
    let mean = navs.iter().fold(0.0, |a, x| a + x) / n;
    let max = navs.iter().cloned().fold(f64::MIN, f64::max);
    let min = navs.iter().cloned().fold(f64::MAX, f64::min);
    let (mut peak, mut drawdown) = (kept[0], (0.0, None, None));
    for &(at, nav) in &kept {
        if nav > peak.1 {
            peak = (at, nav);
        }
        if (peak.1 - nav) / peak.1 > drawdown.0 {
            drawdown = ((peak.1 - nav) / peak.1, Some(peak.0), Some(at));
        }
    }
    let returns: Vec<f64> = navs.windows(2).map(|pair| pair[1] / pair[0] - 1.0).collect();
    Some(Expected {
        count: navs.len() as u64,
        mean,
        stddev: sample_stddev(&navs),
        spread: (max - min) / mean,
        total_return: navs[navs.len() - 1] / navs[0] - 1.0,
        drawdown,
        volatility: sample_stddev(&returns),
    })
}

fn close_option(got: Option<f64>, want: Option<f64>) -> bool {
    match (got, want) {
        (Some(a), Some(b)) => close(a, b),
        (a, b) => a == b,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
}

fn check_against_independent(data: &Path, answer: &Answer, from: Option<i64>, to: Option<i64>) {
    let rows = rows_by_portfolio(data);
    let want: Vec<(String, Expected)> =
        rows.iter().filter_map(|(id, rows)| expected(rows, from, to).map(|e| (id.clone(), e))).collect();
    assert_eq!(answer.stats.len(), want.len(), "portfolios with rows in the interval");
    let want: BTreeMap<String, _> = want.into_iter().collect();
    for s in &answer.stats {
        let want = &want[&s.portfolio.to_string()];
        assert_eq!(s.moments.count, want.count, "{}", s.portfolio);
        assert!(close(s.moments.mean, want.mean), "{}: mean {} vs {}", s.portfolio, s.moments.mean, want.mean);
        assert!(close_option(s.moments.stddev(), want.stddev), "{}: stddev", s.portfolio);
        assert!(close(s.moments.spread().unwrap(), want.spread), "{}: spread", s.portfolio);
        assert!(close(s.trend.total_return().unwrap(), want.total_return), "{}: return", s.portfolio);
        let fall = s.trend.max_drawdown().expect("positive NAVs");
        let got = (fall.map_or(0.0, |f| f.fraction), fall.map(|f| f.peak.at), fall.map(|f| f.trough.at));
        assert!(close(got.0, want.drawdown.0), "{}: drawdown {got:?} vs {:?}", s.portfolio, want.drawdown);
        assert_eq!((got.1, got.2), (want.drawdown.1, want.drawdown.2), "{}: drawdown times", s.portfolio);
        assert!(
            close_option(s.trend.volatility(), want.volatility),
            "{}: volatility {:?} vs {:?}",
            s.portfolio,
            s.trend.volatility(),
            want.volatility
        );
    }
}

fn dataset(dir: &Path, investors: u32, portfolios: u32, rows: u32) {
    let start = parse_timestamp("2026-11-24 09:00:00").unwrap();
    generate(&Dataset { investors, portfolios, rows, start, seed: 42, step: 20 }, dir).unwrap();
}

fn query(data: &Path, portfolio: Option<&str>, from: Option<&str>, to: Option<&str>) -> Answer {
    let query = Query {
        data: data.to_path_buf(),
        portfolio: portfolio.map(|p| p.parse().unwrap()),
        interval: Interval { from: from.map(secs), to: to.map(secs) },
        stats: true,
    };
    run(&query).unwrap()
}

#[test]
fn statistics_agree_with_an_independent_computation_over_any_interval() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 4, 3, 70_000); // more than one 64k batch per file
    for (from, to) in [
        (None, None),
        (Some("2026-11-24 12:00:00"), Some("2026-11-25 18:33:20")),
        (Some("2026-12-01"), None),
        (None, Some("2026-11-24 09:00:40")),
        (Some("2026-11-24 10:00:00"), Some("2026-11-24 10:00:00")),
    ] {
        let answer = query(dir.path(), None, from, to);
        assert_eq!(answer.skipped_rows, 0);
        check_against_independent(dir.path(), &answer, from.map(secs), to.map(secs));
    }
    let single = query(dir.path(), None, Some("2026-11-24 10:00:00"), Some("2026-11-24 10:00:00"));
    assert!(
        single
            .stats
            .iter()
            .all(|s| s.moments.count == 1 && s.moments.stddev().is_none() && s.moments.spread() == Some(0.0))
    );
    assert_eq!(single.stats[0].name, "Investor 1");
}

#[test]
fn a_portfolio_query_lists_its_rows_in_time_order_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 2, 2, 100);
    let answer = query(dir.path(), Some("2.1"), Some("2026-11-24 09:10:00"), Some("2026-11-24 09:20:00"));
    assert_eq!(answer.rows.len(), 31, "both ends included: 09:10:00 … 09:20:00 every 20 s");
    assert_eq!(answer.rows[0].timestamp, secs("2026-11-24 09:10:00"));
    assert_eq!(answer.rows[30].timestamp, secs("2026-11-24 09:20:00"));
    assert!(answer.rows.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert!(answer.rows.iter().all(|r| r.portfolio == "2.1"));
    let file = rows_by_portfolio(dir.path())["2.1"].clone();
    for row in &answer.rows {
        assert!(file.contains(&(row.timestamp, row.nav)));
    }
    assert_eq!(answer.stats.len(), 4, "the statistics cover every portfolio");
}

#[test]
fn portfolios_are_ordered_by_investor_then_number_as_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let header = "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n";
    for id in ["1.10", "10.1", "1.2", "2.1", "1.1"] {
        let p: PortfolioId = id.parse().unwrap();
        std::fs::write(
            dir.path().join(format!("INVESTOR_{}_PORTFOLIO_{}.csv", p.investor, p.number)),
            format!("{header}{id},2026-11-24 09:00:00,100,0,0\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("investors.csv"), "INVESTOR,NAME\n10,Ten Capital\n").unwrap();
    let answer = query(dir.path(), None, None, None);
    let order: Vec<String> = answer.stats.iter().map(|s| s.portfolio.to_string()).collect();
    assert_eq!(order, ["1.1", "1.2", "1.10", "2.1", "10.1"]);
    assert_eq!(answer.stats[4].name, "Ten Capital");
    assert_eq!(answer.stats[0].name, "Investor 1", "no name on file: Investor N");
}

#[test]
fn corrupt_rows_are_skipped_counted_and_located() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 1, 2, 50);
    let path = dir.path().join("INVESTOR_1_PORTFOLIO_2.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("1.2,2026-11-24 10:00:00,abc,0,0\n1.2,2026-11-24\n1.2,tomorrow,5,0,0\n1.2,2026-11-24 10:01:00,,0,0\n1.2,2026-11-24 10:02:00,123.5,1,1");
    std::fs::write(&path, text).unwrap();
    // Files that are not portfolio files are ignored; empty ones are fine.
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    std::fs::write(dir.path().join("INVESTOR_3_PORTFOLIO_1.csv"), "").unwrap();
    std::fs::write(dir.path().join("INVESTOR_3_PORTFOLIO_2.csv"), "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n")
        .unwrap();
    let answer = query(dir.path(), None, None, None);
    assert_eq!(answer.skipped_rows, 4);
    let warnings = answer.warnings.join("\n");
    for line in ["line 52", "line 53", "line 54", "line 55"] {
        assert!(warnings.contains(&format!("INVESTOR_1_PORTFOLIO_2.csv: {line}:")), "{line} in:\n{warnings}");
    }
    check_against_independent(dir.path(), &answer, None, None);
    let p2 = answer.stats.iter().find(|s| s.portfolio.to_string() == "1.2").unwrap();
    assert_eq!(p2.moments.count, 51, "50 generated rows and the last, unterminated one");
}

#[test]
fn other_csv_dialects_are_read_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("INVESTOR_1_PORTFOLIO_1.csv"),
        "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\r\n\"1.1\",2022-03-20T15:38:00,100.5,0,0\r\n1.1,2022-3-20 15:38:20,101.5,1,0.99\r\n",
    )
    .unwrap();
    let answer = query(dir.path(), Some("1.1"), Some("2022-3-20 15:38"), None);
    assert_eq!(answer.skipped_rows, 0, "{:?}", answer.warnings);
    assert_eq!(answer.rows.iter().map(|r| r.nav).collect::<Vec<_>>(), [100.5, 101.5]);
    assert_eq!(answer.rows[1].timestamp, secs("2022-03-20 15:38:20"));
}

fn stockd(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stockd")).args(args).output().unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn bad_input_gets_a_one_line_error_and_a_failure_status() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 1, 1, 5);
    let data = dir.path().to_str().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let cases: [(Vec<&str>, &str); 6] = [
        (
            vec!["query", "--data", data, "--from", "yesterday"],
            "--from \"yesterday\" is not a time; use YYYY-MM-DD, YYYY-MM-DD HH:MM",
        ),
        (
            vec!["query", "--data", data, "--from", "2026-11-25", "--to", "2026-11-24"],
            "--from 2026-11-25 is after --to 2026-11-24",
        ),
        (vec!["query", "--data", "/nonexistent/data"], "cannot read the data folder /nonexistent/data"),
        (vec!["query", "9.9", "--data", data], "no portfolio 9.9 in"),
        (vec!["query", "../x", "--data", data], "portfolio id \"../x\" is not of the form N.P"),
        (vec!["query", "--data", empty.path().to_str().unwrap()], "no portfolio files (INVESTOR_i_PORTFOLIO_p.csv) in"),
    ];
    for (args, message) in cases {
        let (ok, _, stderr) = stockd(&args);
        assert!(!ok, "{args:?} should fail");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, got {stderr:?}");
        assert!(stderr.starts_with("error: ") && stderr.contains(message), "{args:?}: {stderr:?}");
    }
    // Each cause said once (it used to be repeated after the message).
    let (_, _, stderr) = stockd(&["query", "2.1", "--data", "/nonexistent"]);
    assert_eq!(
        stderr.trim_end(),
        "error: cannot read the data folder /nonexistent: No such file or directory (os error 2)"
    );
}

#[test]
fn json_and_csv_outputs_parse_back_to_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 2, 2, 30);
    let data = dir.path().to_str().unwrap();
    let answer = query(dir.path(), Some("1.2"), Some("2026-11-24 09:02:00"), None);

    let (ok, stdout, _) =
        stockd(&["query", "1.2", "--data", data, "--from", "2026-11-24 09:02:00", "--format", "json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["portfolio"], "1.2");
    assert_eq!(json["from"], "2026-11-24 09:02:00");
    assert_eq!(json["to"], serde_json::Value::Null);
    assert_eq!(json["skipped_rows"], 0);
    assert_eq!(json["rows"].as_array().unwrap().len(), answer.rows.len());
    assert_eq!(json["rows"][0]["TIMESTAMP"], "2026-11-24 09:02:00");
    assert_eq!(json["rows"][0]["NAV"].as_f64().unwrap(), answer.rows[0].nav);
    let stats = json["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 4);
    assert_eq!(stats[1]["portfolio"], "1.2");
    assert_eq!(stats[1]["investor"], 1);
    assert_eq!(stats[1]["name"], "Investor 1");
    // Full precision: no rounding to 2 decimals (Arrow's SIMD sums may
    // differ in the last bit between runs).
    assert!(close(stats[1]["avg"].as_f64().unwrap(), answer.stats[1].moments.mean));
    assert!(close(stats[1]["stddev"].as_f64().unwrap(), answer.stats[1].moments.stddev().unwrap()));
    assert!(stats[1]["avg"].as_f64().unwrap().fract() != 0.0);
    let trend = answer.stats[1].trend;
    // serde_json's parser may be one unit in the last place off.
    assert!(close_option(stats[1]["return"].as_f64(), trend.total_return()));
    assert!(close_option(stats[1]["volatility"].as_f64(), trend.volatility()));
    let fall = trend.max_drawdown().unwrap().expect("a random walk of 27 rows falls somewhere");
    assert!(close(stats[1]["max_drawdown"].as_f64().unwrap(), fall.fraction));
    assert_eq!(stats[1]["drawdown_peak"], stockd::market::format_epoch(fall.peak.at));
    assert_eq!(stats[1]["drawdown_trough"], stockd::market::format_epoch(fall.trough.at));

    let (ok, stdout, _) = stockd(&["query", "1.2", "--data", data, "--from", "2026-11-24 09:02:00", "--format", "csv"]);
    assert!(ok);
    let (rows, stats) = stdout.split_once("\n\n").expect("rows, a blank line, statistics");
    let rows: Vec<csv::StringRecord> =
        csv::Reader::from_reader(rows.as_bytes()).records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), answer.rows.len());
    assert_eq!(rows[0][2].parse::<f64>().unwrap(), answer.rows[0].nav);
    let mut reader = csv::Reader::from_reader(stats.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "INVESTOR",
            "NAME",
            "PORTFOLIO",
            "ROWS",
            "AVG",
            "STDDEV",
            "SPREAD",
            "RETURN",
            "MAX_DRAWDOWN",
            "DRAWDOWN_PEAK",
            "DRAWDOWN_TROUGH",
            "VOLATILITY"
        ]
    );
    let stats: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(stats[3][2].to_string(), "2.2");
    assert!(close(stats[3][4].parse::<f64>().unwrap(), answer.stats[3].moments.mean));
    let trend = answer.stats[3].trend;
    assert_eq!(stats[3][7].parse::<f64>().ok(), trend.total_return(), "full precision");
    assert_eq!(stats[3][11].parse::<f64>().ok(), trend.volatility());
    let fall = trend.max_drawdown().unwrap().expect("a random walk of 27 rows falls somewhere");
    assert_eq!(stats[3][8].parse::<f64>().ok(), Some(fall.fraction));
    assert_eq!(stats[3][10].to_string(), stockd::market::format_epoch(fall.trough.at));

    let (ok, stdout, _) = stockd(&["query", "1.2", "--data", data]);
    assert!(ok);
    assert!(
        stdout.contains("Portfolio 1.2: 30 row(s)") && stdout.contains("Investor 2") && stdout.contains("SPREAD %"),
        "{stdout}"
    );
}

#[test]
fn a_plot_is_an_svg_with_a_line_per_portfolio() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 2, 2, 30);
    let svg = dir.path().join("nav.svg");
    let (ok, _, stderr) = stockd(&["query", "--data", dir.path().to_str().unwrap(), "--plot", svg.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.matches("<polyline").count() >= 4, "four lines");
    assert!(text.contains("Investor 2 · 2.2") && text.contains("NAV (currency units)"));
}

/// The same questions answered from the CSV files and, after `stockd
/// archive` built the archive and its hour summaries from them, from the
/// archive: the same rows bit for bit, the same statistics to 1e-9, over
/// intervals of whole hours (summaries alone), intervals whose ends cut
/// hours (summaries and the edge hours' rows), over the archive alone once
/// the CSV files are gone, and from its rows alone without summaries.
#[test]
fn the_archive_gives_the_same_answers_as_the_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 5, 4, 2_000); // 2,000 rows 20 s apart: 11 hours and a bit
    let intervals = [
        (None, None),
        (Some("2026-11-24 10:00:00"), Some("2026-11-24 13:59:59")),
        (Some("2026-11-24 00:00:00"), Some("2026-11-24 23:59:59")),
        (Some("2026-11-24 09:59:59"), Some("2026-11-24 10:00:20")),
        (Some("2026-11-24 10:17:20"), Some("2026-11-24 14:41:40")),
        (Some("2026-11-24 19:59:00"), None),
        (Some("2026-11-24 11:00:00"), Some("2026-11-24 11:00:00")),
    ];
    let before: Vec<(Answer, Answer)> = intervals
        .iter()
        .map(|(from, to)| (query(dir.path(), Some("3.2"), *from, *to), query(dir.path(), None, *from, *to)))
        .collect();
    assert!(!stockd::archive::is_complete(dir.path()));
    let imported = stockd::archive::import::import(dir.path()).unwrap();
    assert_eq!((imported.files, imported.rows, imported.skipped), (20, 40_000, 0));
    assert_eq!(imported.summaries, 13, "09:00 to 20:00: every hour summarised, and the day");
    assert!(stockd::archive::is_complete(dir.path()), "the archive now holds every row");
    let compare = |label: &str| {
        for ((from, to), (rows, all)) in intervals.iter().zip(&before) {
            let archived = query(dir.path(), Some("3.2"), *from, *to);
            assert_eq!(archived.rows, rows.rows, "{label} {from:?}..{to:?}: rows of 3.2");
            let archived = query(dir.path(), None, *from, *to);
            assert_eq!(archived.stats.len(), all.stats.len(), "{label} {from:?}..{to:?}: portfolios");
            for (got, want) in archived.stats.iter().zip(&all.stats) {
                assert_eq!(
                    (got.portfolio, &got.name, got.moments.count),
                    (want.portfolio, &want.name, want.moments.count)
                );
                assert!(close(got.moments.mean, want.moments.mean), "{label} {}: mean", got.portfolio);
                assert_eq!((got.moments.min, got.moments.max), (want.moments.min, want.moments.max));
                match (got.moments.stddev(), want.moments.stddev()) {
                    (Some(a), Some(b)) => assert!(close(a, b), "{label} {}: stddev {a} vs {b}", got.portfolio),
                    (a, b) => assert_eq!(a, b),
                }
                let (a, b) = (got.trend, want.trend);
                assert_eq!((a.first, a.last, a.peak, a.trough), (b.first, b.last, b.peak, b.trough));
                assert_eq!(a.fall.map(|f| (f.peak, f.trough)), b.fall.map(|f| (f.peak, f.trough)));
                assert!(close_option(a.volatility(), b.volatility()), "{label} {}: volatility", got.portfolio);
            }
        }
    };
    compare("with the CSV files");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            std::fs::remove_file(path).unwrap();
        }
    }
    compare("without the CSV files");
    std::fs::remove_dir_all(dir.path().join(stockd::archive::summary::DIR)).unwrap();
    compare("from the rows alone, without summaries");
    let (ok, _, stderr) = stockd(&["query", "9.9", "--data", dir.path().to_str().unwrap()]);
    assert!(!ok && stderr.contains("no portfolio 9.9"), "{stderr}");
}
