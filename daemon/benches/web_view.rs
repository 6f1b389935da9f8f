//! The web view at the seed's scale, in a real browser: runs
//! `stockd bench pipeline --http …` (1,000 investors × 1,000 portfolios of
//! `wide.wasm` by default, so the pipeline's own report shows what serving
//! the view costs it), then measures in headless Chromium the portfolios
//! page's first paint (navigation until the first 50 rows are drawn) and
//! one live update (from the moment the API has an interval's valuations
//! until the page shows them, without a reload).
//!
//! `cargo bench --bench web_view` (after `just plugins`; needs Debian's
//! chromium and chromium-driver). `WEB_BENCH_INVESTORS=N` for a smaller
//! run, `WEB_BENCH_DIR` for where the pipeline's files go (default /tmp).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};

#[path = "../tests/browser/mod.rs"]
mod browser;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` on the view; the body, if it answered 200.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then(|| response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// The first page's total and 1.1's timestamp, from the API.
fn api_state(port: u16) -> Option<(u64, String)> {
    let body = get(port, "/api/portfolios?limit=1")?;
    // Chunked or not, the JSON object is the part between the outer braces.
    let json = &body[body.find('{')?..=body.rfind('}')?];
    let page: serde_json::Value = serde_json::from_str(json).ok()?;
    let total = page["total"].as_u64()?;
    let timestamp = page["rows"][0]["timestamp"].as_str().unwrap_or_default().to_string();
    Some((total, timestamp))
}

/// The text of 1.1's timestamp cell on the page, if drawn.
async fn page_timestamp(browser: &Client) -> Option<String> {
    let row = browser.find(Locator::Css("tr[data-portfolio=\"1.1\"] td.timestamp")).await.ok()?;
    row.text().await.ok()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let investors: u32 = std::env::var("WEB_BENCH_INVESTORS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let plugin = target.join("test-plugins").join("wide.wasm");
    assert!(plugin.exists(), "{} is missing: run `just plugins`", plugin.display());
    let port = free_port();
    let profile = tempfile::tempdir().unwrap();
    let report = profile.path().join("pipeline.txt");
    let mut pipeline = Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["bench", "pipeline", "--investors", &investors.to_string(), "--intervals", "4"])
        .arg("--plugin")
        .arg(&plugin)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .arg("--dir")
        .arg(std::env::var_os("WEB_BENCH_DIR").unwrap_or_else(|| "/tmp".into()))
        .stdout(std::fs::File::create(&report).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let portfolios = u64::from(investors) * 1000;
    let deadline = Instant::now() + Duration::from_secs(900);
    while api_state(port).is_none_or(|(total, _)| total < portfolios) {
        assert!(Instant::now() < deadline, "the view never had {portfolios} portfolios");
        std::thread::sleep(Duration::from_millis(200));
    }

    let driver = browser::Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = driver.browser(&profile.path().join("chromium")).await;
        let started = Instant::now();
        browser.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
        loop {
            let rows = browser.find_all(Locator::Css("#portfolios tr[data-portfolio]")).await.unwrap();
            if rows.len() == 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let first_paint = started.elapsed();
        let shown = page_timestamp(&browser).await.unwrap();
        // The next interval: when the API has it, then when the page shows it.
        let mut server_at = None;
        let page_at = loop {
            let now = Instant::now();
            if server_at.is_none() && api_state(port).is_some_and(|(_, timestamp)| timestamp > shown) {
                server_at = Some(now);
            }
            if page_timestamp(&browser).await.is_some_and(|timestamp| timestamp > shown) {
                break now;
            }
            assert!(now < deadline, "no live update");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let server_at = server_at.unwrap_or(page_at);
        println!(
            "web view, {portfolios} portfolios: first paint (navigation to 50 rows drawn) {:.0} ms; live update shown {:.0} ms after the API had it (the page fetches at most once a second)",
            first_paint.as_secs_f64() * 1000.0,
            page_at.duration_since(server_at).as_secs_f64() * 1000.0
        );
        browser.close().await.unwrap();
    });
    drop(driver);
    let status = pipeline.wait().unwrap();
    println!("the pipeline with the view on (exit {status}):\n{}", std::fs::read_to_string(&report).unwrap());
}
