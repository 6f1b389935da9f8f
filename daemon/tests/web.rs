//! The web view in a real browser (headless Chromium driven over
//! WebDriver): what a user sees, checked against the portfolio files.
//! Screenshots of each page go to `target/web-screenshots/`.

mod browser;
mod common;
mod daemon;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use browser::{CHROMEDRIVER, CHROMIUM, Driver};
use common::deploy;
use daemon::{Daemon, csv_rows, free_port, http_get as request, http_get_as, seed_plugins, write_fast_config};
use fantoccini::{Client, Locator};

/// The investor whose name is markup.
const MARKUP_NAME: &str = "<img src=x onerror=alert(1)>";

/// chromedriver, or `None` (a loud skip; a failure under CI) when Chromium
/// is not installed.
fn driver() -> Option<Driver> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser tests: {CHROMIUM} is missing");
        eprintln!("SKIPPED (no browser): install Debian's chromium and chromium-driver, as .ci/run does");
        return None;
    }
    Some(Driver::start())
}

/// Polls `probe` every 100 ms until it returns `Some`, at most `timeout`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of every cell of the row of `portfolio` on the portfolios page.
async fn row_cells(browser: &Client, portfolio: &str) -> Option<Vec<String>> {
    let row = browser.find(Locator::Css(&format!("tr[data-portfolio=\"{portfolio}\"]"))).await.ok()?;
    let mut cells = Vec::new();
    for cell in row.find_all(Locator::Css("td")).await.ok()? {
        cells.push(cell.text().await.ok()?);
    }
    Some(cells)
}

/// A NAV as the page prints it: thousands separators, two decimals.
fn money(text: &str) -> String {
    let value: f64 = text.parse().unwrap();
    let cents = format!("{value:.2}");
    let (whole, fraction) = cents.split_once('.').unwrap();
    let digits: Vec<char> = whole.chars().collect();
    let mut grouped = String::new();
    for (index, digit) in digits.iter().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(*digit);
    }
    format!("{grouped}.{fraction}")
}

fn screenshots_dir() -> PathBuf {
    let dir = common::test_plugins_dir().parent().unwrap().join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// `GET path` on `port`: the status and the body.
/// The body of a `GET` that must answer 200.
fn http_get(port: u16, path: &str) -> String {
    let (status, body) = request(port, path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_view_shows_the_portfolios_live_their_history_and_the_investors() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), None);
    let plugins = seed_plugins(dir.path());
    deploy("markup_name", &plugins, 7);
    deploy("looper", &plugins, 9);
    let data = dir.path().join("data");
    let port = free_port();
    let http = format!("127.0.0.1:{port}");
    let args = ["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()];
    let args = [&args[..], &["--data", data.to_str().unwrap(), "--interval", "1s", "--http", &http]].concat();
    let _daemon = Daemon::start(&args, &dir.path().join("stockd.log"));
    let seed = ["1.1", "1.2", "2.1", "2.2", "3.1", "3.2"];
    let files_have_rows = || {
        let files = csv_rows(&data);
        (files.len() == 7 && files.values().all(|rows| rows.len() >= 2)).then_some(())
    };
    eventually("two rows in every portfolio file", Duration::from_secs(60), || async { files_have_rows() }).await;

    let browser = driver.browser(&dir.path().join("chromium")).await;
    let base = format!("http://{http}");

    // Portfolios: the seed's six with the NAVs their files hold.
    browser.goto(&format!("{base}/")).await.unwrap();
    for portfolio in seed {
        let cells = eventually(portfolio, Duration::from_secs(20), || row_cells(&browser, portfolio)).await;
        let (investor, nav, timestamp) = (&cells[1], &cells[2], &cells[5]);
        let (n, p) = portfolio.split_once('.').unwrap();
        let rows = &csv_rows(&data)[&format!("INVESTOR_{n}_PORTFOLIO_{p}.csv")];
        let row = rows.iter().find(|row| &row[1] == timestamp).unwrap_or_else(|| panic!("{portfolio} at {timestamp}"));
        assert_eq!(nav, &money(&row[2]), "{portfolio}: the page's NAV is the file's at {timestamp}");
        assert_eq!(investor, &format!("Investor {n}"));
    }
    screenshot(&browser, "portfolios").await;

    // Live: 1.1's row moves on without a reload.
    // (A cell read while the table re-renders is stale: read again.)
    let before = eventually("1.1", Duration::from_secs(10), || row_cells(&browser, "1.1")).await[5].clone();
    browser.execute("window.notReloaded = true;", vec![]).await.unwrap();
    eventually("1.1 to be valued again on the page", Duration::from_secs(10), || async {
        row_cells(&browser, "1.1").await.filter(|cells| cells[5] > before)
    })
    .await;
    let same_page = browser.execute("return window.notReloaded === true;", vec![]).await.unwrap();
    assert_eq!(same_page, serde_json::json!(true), "the page was reloaded");

    // A name that is markup shows as text.
    let markup = eventually("7.1", Duration::from_secs(10), || row_cells(&browser, "7.1")).await;
    assert_eq!(markup[1], MARKUP_NAME);
    assert!(browser.find_all(Locator::Css("#portfolios img")).await.unwrap().is_empty(), "markup rendered as HTML");

    // Portfolio 1.1: a point per row of its file.
    browser.goto(&format!("{base}/portfolio/1.1")).await.unwrap();
    let before = csv_rows(&data)["INVESTOR_1_PORTFOLIO_1.csv"].len();
    let points = eventually("the chart", Duration::from_secs(10), || async {
        let points = browser.find_all(Locator::Css("#chart circle.point")).await.ok()?;
        (!points.is_empty()).then_some(points.len())
    })
    .await;
    let after = csv_rows(&data)["INVESTOR_1_PORTFOLIO_1.csv"].len();
    assert!((before..=after).contains(&points), "{points} points; the file had {before} then {after} rows");
    let count = browser.find(Locator::Id("count")).await.unwrap().text().await.unwrap();
    assert_eq!(count, points.to_string());
    // Its statistics, against the file's first `points` rows.
    let shown = csv_rows(&data)["INVESTOR_1_PORTFOLIO_1.csv"][..points].to_vec();
    let navs: Vec<f64> = shown.iter().map(|row| row[2].parse().unwrap()).collect();
    let text_of = |id: &'static str| {
        let browser = browser.clone();
        async move { browser.find(Locator::Id(id)).await.unwrap().text().await.unwrap() }
    };
    let total_return = navs[navs.len() - 1] / navs[0] - 1.0;
    assert_eq!(text_of("return").await, format!("{:.2} %", total_return * 100.0));
    let (mut peak, mut fall) = (navs[0], 0.0_f64);
    for nav in &navs {
        peak = peak.max(*nav);
        fall = fall.max((peak - nav) / peak);
    }
    assert_eq!(text_of("drawdown").await, format!("{:.2} %", fall * 100.0));
    // The chart's axes: up to five times from the first row's to the
    // last's, and NAV labels within the NAVs' range.
    let mut labels = Vec::new();
    for tick in browser.find_all(Locator::Css("#axis-time text.tick")).await.unwrap() {
        labels.push(tick.text().await.unwrap());
    }
    assert!((1..=5).contains(&labels.len()), "{labels:?}");
    assert_eq!(labels[0], shown[0][1][11..], "the time axis starts at the first row");
    assert_eq!(labels[labels.len() - 1], shown[points - 1][1][11..], "and ends at the last");
    let (low, high) = navs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), nav| (lo.min(*nav), hi.max(*nav)));
    let nav_ticks = browser.find_all(Locator::Css("#axis-nav text.tick")).await.unwrap();
    assert!(nav_ticks.len() >= 2, "NAV labels");
    for tick in nav_ticks {
        let value: f64 = tick.text().await.unwrap().replace(',', "").parse().unwrap();
        assert!((low - 1.0..=high + 1.0).contains(&value), "{value} outside {low}..{high}");
    }
    // The value under the pointer: at the right edge, the last row.
    browser
        .execute(
            "const box = document.getElementById('overlay').getBoundingClientRect();
             document.getElementById('overlay').dispatchEvent(new MouseEvent('mousemove',
               { clientX: box.right - 1, clientY: box.top + 5, bubbles: true }));",
            vec![],
        )
        .await
        .unwrap();
    let last = &shown[points - 1];
    assert_eq!(text_of("hover").await, format!("{} UTC — NAV {}", &last[1], money(&last[2])));
    // A range: the second and third rows only, and their average.
    let rows = csv_rows(&data)["INVESTOR_1_PORTFOLIO_1.csv"].clone();
    browser.find(Locator::Id("from")).await.unwrap().send_keys(&rows[1][1]).await.unwrap();
    browser.find(Locator::Id("to")).await.unwrap().send_keys(&rows[2][1]).await.unwrap();
    browser.find(Locator::Id("show")).await.unwrap().click().await.unwrap();
    eventually("the chart of the range", Duration::from_secs(10), || async {
        let points = browser.find_all(Locator::Css("#chart circle.point")).await.ok()?;
        (points.len() == 2).then_some(())
    })
    .await;
    let average = (rows[1][2].parse::<f64>().unwrap() + rows[2][2].parse::<f64>().unwrap()) / 2.0;
    let shown = browser.find(Locator::Id("average")).await.unwrap().text().await.unwrap();
    assert_eq!(shown, money(&format!("{average:.2}")), "the range's average NAV");
    screenshot(&browser, "portfolio").await;
    // The CSV download is the file as the sink wrote it (up to now).
    let download = http_get(port, "/api/portfolios/1.1?format=csv");
    let file = std::fs::read_to_string(data.join("INVESTOR_1_PORTFOLIO_1.csv")).unwrap();
    assert!(download.lines().count() > 2, "{download}");
    assert!(file.starts_with(&download), "download:\n{download}\nfile:\n{file}");

    // Investors: a plugin dropped in appears, running; the markup name is text.
    browser.goto(&format!("{base}/investors")).await.unwrap();
    deploy("investor2", &plugins, 8);
    let status = eventually("investor 8 on the investors page", Duration::from_secs(20), || async {
        let row = browser.find(Locator::Css("tr[data-investor=\"8\"]")).await.ok()?;
        row.find(Locator::Css("td.status")).await.ok()?.text().await.ok()
    })
    .await;
    assert_eq!(status, "running");
    let name = eventually("investor 7's name", Duration::from_secs(10), || async {
        browser.find(Locator::Css("tr[data-investor=\"7\"] td.name")).await.ok()?.text().await.ok()
    })
    .await;
    assert_eq!(name, MARKUP_NAME);
    assert!(browser.find_all(Locator::Css("#investors img")).await.unwrap().is_empty(), "markup rendered as HTML");
    // The endless loop is quarantined, with its reason; the seed investor
    // shows when it last valued.
    let (status, error) = eventually("investor 9 quarantined", Duration::from_secs(20), || async {
        let row = browser.find(Locator::Css("tr[data-investor=\"9\"]")).await.ok()?;
        let status = row.find(Locator::Css("td.status")).await.ok()?.text().await.ok()?;
        let error = row.find(Locator::Css("td.error")).await.ok()?.text().await.ok()?;
        (status == "quarantined").then_some((status, error))
    })
    .await;
    assert_eq!((status.as_str(), error.as_str()), ("quarantined", "investor 9: evaluate timed out after 250ms"));
    let last_valued = eventually("investor 1's last interval", Duration::from_secs(10), || async {
        browser.find(Locator::Css("tr[data-investor=\"1\"] td.last-valued")).await.ok()?.text().await.ok()
    })
    .await;
    assert!(chrono::NaiveDateTime::parse_from_str(&last_valued, "%Y-%m-%d %H:%M:%S").is_ok(), "{last_valued}");
    screenshot(&browser, "investors").await;

    // Market: every ticker's latest price.
    browser.goto(&format!("{base}/market")).await.unwrap();
    let tickers = eventually("the market", Duration::from_secs(10), || async {
        let rows = browser.find_all(Locator::Css("#market tr[data-ticker]")).await.ok()?;
        (rows.len() == 24).then_some(rows.len())
    })
    .await;
    assert_eq!(tickers, 24);
    screenshot(&browser, "market").await;
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_get_a_400_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), None);
    let plugins = seed_plugins(dir.path());
    let port = free_port();
    let http = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let args = ["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()];
    let args = [&args[..], &["--data", data.to_str().unwrap(), "--http", &http]].concat();
    let daemon = Daemon::start(&args, &dir.path().join("stockd.log"));
    daemon.wait_for_log("web view on", Duration::from_secs(60));
    let get = |path: &str| request(port, path);
    for (path, reason) in [
        ("/api/portfolios?sort=secret", "sort must be"),
        ("/api/portfolios?limit=1000000", "limit must be between 1 and 1000"),
        ("/api/portfolios?offset=-1", "offset must be a whole number"),
        ("/api/portfolios/1.0", "is not a portfolio id"),
        ("/api/portfolios/%3Cscript%3E", "is not a portfolio id"),
        ("/api/portfolios/1.1?from=yesterday", "from:"),
        ("/api/portfolios/1.1?format=xml", "format must be json or csv"),
    ] {
        let (status, body) = get(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(reason), "{path}: {body}");
    }
    let (status, body) = get("/api/portfolios?sort=nav&order=desc&limit=2");
    assert_eq!(status, 200, "{body}");
    let (status, _) = get("/nothing-here");
    assert_eq!(status, 404);
    // A page elsewhere pointing its own name at 127.0.0.1 (DNS rebinding)
    // reads nothing.
    let (status, body) = http_get_as(port, "/api/portfolios", "attacker.example");
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("1.1"), "{body}");
    assert_eq!(http_get_as(port, "/health", &format!("127.0.0.1:{port}")).0, 200);
}
