//! The JSON API and the live event stream behind the pages. Every query
//! parameter is checked: a bad one is a 400 with the reason.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::WebView;
use super::board::{PageRequest, SortKey};
use crate::market::PortfolioId;
use crate::query::batch::Interval;

/// Rows per page at most.
pub const MAX_PAGE: usize = 1_000;
/// Rows per page unless asked.
const DEFAULT_PAGE: usize = 50;

/// A 400 with its reason, as JSON `{"error": …}`.
#[derive(Debug)]
pub struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}

/// `GET /api/portfolios` parameters, all optional.
#[derive(Debug, Deserialize)]
pub struct PortfoliosParams {
    sort: Option<String>,
    order: Option<String>,
    filter: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

fn number(name: &str, value: Option<&str>, default: usize) -> Result<usize, BadRequest> {
    match value {
        None | Some("") => Ok(default),
        Some(text) => text.parse().map_err(|_| BadRequest(format!("{name} must be a whole number >= 0, not {text:?}"))),
    }
}

impl PortfoliosParams {
    fn request(&self) -> Result<PageRequest, BadRequest> {
        let sort = match self.sort.as_deref().unwrap_or("portfolio") {
            "portfolio" => SortKey::Portfolio,
            "investor" => SortKey::Investor,
            "nav" => SortKey::Nav,
            "nav_change" => SortKey::NavChange,
            "nav_change_pct" => SortKey::NavChangePct,
            "movers" => SortKey::Movers,
            other => {
                return Err(BadRequest(format!(
                    "sort must be portfolio, investor, nav, nav_change, nav_change_pct or movers, not {other:?}"
                )));
            }
        };
        let descending = match self.order.as_deref().unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            other => return Err(BadRequest(format!("order must be asc or desc, not {other:?}"))),
        };
        let limit = number("limit", self.limit.as_deref(), DEFAULT_PAGE)?;
        if limit == 0 || limit > MAX_PAGE {
            return Err(BadRequest(format!("limit must be between 1 and {MAX_PAGE}, not {limit}")));
        }
        let filter = self.filter.clone().unwrap_or_default();
        if filter.len() > 100 {
            return Err(BadRequest("filter is longer than 100 bytes".to_string()));
        }
        Ok(PageRequest { sort, descending, filter, offset: number("offset", self.offset.as_deref(), 0)?, limit })
    }
}

/// `GET /api/portfolios?sort=&order=&filter=&offset=&limit=`: one page.
pub async fn portfolios(
    State(view): State<WebView>,
    Query(params): Query<PortfoliosParams>,
) -> Result<impl IntoResponse, BadRequest> {
    let request = params.request()?;
    let page = view.board.read().unwrap_or_else(|poisoned| poisoned.into_inner()).page(&request);
    Ok(Json(page))
}

/// `GET /api/portfolios/{N.P}` parameters.
#[derive(Debug, Deserialize)]
pub struct RangeParams {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// One row of a portfolio's history.
#[derive(Debug, Serialize)]
struct HistoryRow {
    timestamp: String,
    nav: f64,
    nav_change: f64,
    nav_change_pct: f64,
}

/// A portfolio's statistics over the range (see `crate::statistics::trend`
/// for return, drawdown and volatility; `null` where undefined).
#[derive(Debug, Serialize)]
struct HistoryStats {
    count: u64,
    average: f64,
    stddev: Option<f64>,
    spread: Option<f64>,
    #[serde(flatten)]
    trend: crate::query::report::TrendJson,
}

impl HistoryStats {
    /// The statistics of `rows` (in time order); `None` without rows.
    fn of(rows: &[crate::query::Row]) -> Option<HistoryStats> {
        let trend = crate::statistics::Trend::of(&mut crate::query::points_of(rows))?;
        let navs = arrow::array::Float64Array::from_iter_values(rows.iter().map(|row| row.nav));
        let moments = crate::statistics::Moments::of(&navs);
        Some(HistoryStats {
            count: moments.count,
            average: moments.mean,
            stddev: moments.stddev(),
            spread: moments.spread(),
            trend: crate::query::report::TrendJson::of(&trend),
        })
    }
}

fn time(name: &str, value: Option<&str>) -> Result<Option<i64>, BadRequest> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => crate::market::parse_timestamp(text)
            .map(|at| Some(at.and_utc().timestamp()))
            .map_err(|error| BadRequest(format!("{name}: {error}"))),
    }
}

/// `GET /api/portfolios/{N.P}?from=&to=[&format=csv]`: the portfolio's rows
/// in the range and their statistics (App2), through the query code. It
/// reads that portfolio's file (or its row groups in the archive) only,
/// never the whole folder, on a blocking thread of its own and the view's
/// query threads.
pub async fn portfolio(
    State(view): State<WebView>,
    Path(id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<Response, BadRequest> {
    let portfolio: PortfolioId =
        id.parse().map_err(|error| BadRequest(format!("{:?} is not a portfolio id N.P: {error}", truncate(&id))))?;
    let interval = Interval { from: time("from", params.from.as_deref())?, to: time("to", params.to.as_deref())? };
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(BadRequest(format!("format must be json or csv, not {:?}", truncate(other)))),
    };
    let query = crate::query::Query { data: view.data.clone(), portfolio: Some(portfolio), interval, stats: false };
    let threads = std::sync::Arc::clone(&view.queries);
    let answer = tokio::task::spawn_blocking(move || threads.install(|| crate::query::run(&query)))
        .await
        .map_err(|error| BadRequest(format!("the query failed: {error}")))?
        .map_err(|error| BadRequest(error.to_string()))?;
    let rows: Vec<HistoryRow> = answer
        .rows
        .iter()
        .map(|row| HistoryRow {
            timestamp: crate::market::format_epoch(row.timestamp),
            nav: row.nav,
            nav_change: row.nav_change,
            nav_change_pct: row.nav_change_pct,
        })
        .collect();
    if csv {
        // Written as the sink writes the file.
        let mut text = crate::layout::HEADER.to_vec();
        for (row, shown) in answer.rows.iter().zip(&rows) {
            let at = chrono::DateTime::from_timestamp(row.timestamp, 0).unwrap_or_default().naive_utc();
            let valuation = crate::market::ValuationView {
                portfolio,
                at,
                timestamp: shown.timestamp.as_str().into(),
                nav: row.nav,
                nav_change: row.nav_change,
                nav_change_pct: row.nav_change_pct,
                investor: None,
                interval_ms: None,
            };
            crate::layout::write_row(&mut text, &valuation);
        }
        let disposition = format!("attachment; filename=\"{}\"", crate::layout::file_name(portfolio));
        return Ok((
            [(header::CONTENT_TYPE, "text/csv".to_string()), (header::CONTENT_DISPOSITION, disposition)],
            text,
        )
            .into_response());
    }
    let names = crate::layout::load_names(&view.data);
    let body = serde_json::json!({
        "portfolio": portfolio.to_string(),
        "investor": (!answer.rows.is_empty()).then(|| crate::query::investor_name(&names, portfolio)),
        "rows": rows,
        "stats": HistoryStats::of(&answer.rows),
        "skipped_rows": answer.skipped_rows,
    });
    Ok(Json(body).into_response())
}

/// At most 40 characters of user input, for error messages.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// One plugin file on the investors page.
#[derive(Debug, Serialize)]
struct InvestorRow {
    investor: u32,
    file: String,
    /// Plugin-controlled: render as text.
    name: Option<String>,
    status: &'static str,
    error: Option<String>,
    portfolios: Vec<u32>,
    /// The timestamp of the last interval it valued.
    last_valued: Option<String>,
    /// Intervals it failed since its worker started.
    failed_intervals: u64,
}

/// `GET /api/investors`: every plugin file of the folder this process
/// runs: running, standby (another process runs it, named), quarantined
/// (with the reason) or failed to load (with the error), its last interval valued and its failed intervals. Empty when
/// the process does not run the investors.
pub async fn investors(State(view): State<WebView>) -> impl IntoResponse {
    let Some((registry, status)) = &view.investors else {
        return Json(serde_json::json!({ "investors": [], "running_here": false }));
    };
    let status = status.snapshot();
    let mut rows: Vec<InvestorRow> = registry
        .plugins()
        .values()
        .map(|image| {
            let state = status.get(&image.investor()).cloned().unwrap_or_default();
            InvestorRow {
                investor: image.investor().get(),
                file: image.path().display().to_string(),
                name: Some(image.name().to_string()),
                status: match (&state.quarantined, &state.standby_for) {
                    (Some(_), _) => "quarantined",
                    (None, Some(_)) => "standby",
                    (None, None) => "running",
                },
                error: state
                    .quarantined
                    .clone()
                    .or(state.standby_for.as_ref().map(|holder| format!("active in another process: {holder}")))
                    .or(state.last_error.clone()),
                portfolios: image.portfolios().iter().map(|p| p.id).collect(),
                last_valued: state.last_valued,
                failed_intervals: state.failed_intervals,
            }
        })
        .collect();
    for (investor, failure) in registry.failures() {
        match rows.iter_mut().find(|row| row.investor == investor.get()) {
            Some(row) => row.error = Some(format!("a newer file failed to load: {}", failure.error)),
            None => rows.push(InvestorRow {
                investor: investor.get(),
                file: failure.path.display().to_string(),
                name: None,
                status: "failed to load",
                error: Some(failure.error),
                portfolios: Vec::new(),
                last_valued: None,
                failed_intervals: 0,
            }),
        }
    }
    rows.sort_by_key(|row| row.investor);
    Json(serde_json::json!({ "investors": rows, "running_here": true }))
}

/// `GET /api/market`: the latest price of every ticker.
pub async fn market(State(view): State<WebView>) -> impl IntoResponse {
    let quotes = view.board.read().unwrap_or_else(|poisoned| poisoned.into_inner()).market();
    Json(serde_json::json!({ "quotes": quotes }))
}

/// `GET /api/events`: server-sent events, `valuations`, `market` or
/// `investors`, each meaning "fetch again". A browser that falls behind skips to the latest
/// (counted); one that goes away is dropped with its connection.
pub async fn events(State(view): State<WebView>) -> impl IntoResponse {
    let receiver = view.updates.subscribe();
    let metrics = view.metrics.clone();
    let stream = futures_util::stream::unfold((receiver, metrics), |(mut receiver, metrics)| async move {
        let update = match receiver.recv().await {
            Ok(update) => update,
            Err(RecvError::Lagged(skipped)) => {
                metrics.web_events_dropped(skipped);
                super::feed::Update::Valuations
            }
            Err(RecvError::Closed) => return None,
        };
        let name = match update {
            super::feed::Update::Valuations => "valuations",
            super::feed::Update::Market => "market",
            super::feed::Update::Investors => "investors",
        };
        Some((Ok::<_, Infallible>(Event::default().event(name).data("{}")), (receiver, metrics)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::query::generate::{Dataset, Walk};

    /// Holds every thread of rayon's global pool (as the sink's work does,
    /// a CSV window cut for a minute) until the value is dropped.
    struct GlobalPoolHeld(Arc<AtomicBool>);

    impl GlobalPoolHeld {
        fn hold() -> GlobalPoolHeld {
            let released = Arc::new(AtomicBool::new(false));
            let running = Arc::new(AtomicUsize::new(0));
            let threads = rayon::current_num_threads();
            for _ in 0..threads {
                let (released, running) = (Arc::clone(&released), Arc::clone(&running));
                rayon::spawn(move || {
                    running.fetch_add(1, Ordering::SeqCst);
                    let since = Instant::now();
                    while !released.load(Ordering::SeqCst) && since.elapsed() < Duration::from_secs(120) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
            }
            while running.load(Ordering::SeqCst) < threads {
                std::thread::sleep(Duration::from_millis(5));
            }
            GlobalPoolHeld(released)
        }
    }

    impl Drop for GlobalPoolHeld {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn history_pages_read_at_a_lower_cpu_priority_than_the_pipeline() {
        let pipeline = rustix::process::getpriority_process(None).unwrap();
        let threads = super::super::query_threads().unwrap();
        let pages: Vec<i32> = threads.broadcast(|_| rustix::process::getpriority_process(None).unwrap());
        assert_eq!(pages.len(), threads.current_num_threads());
        assert!(pages.iter().all(|nice| *nice >= pipeline.max(10)), "page threads {pages:?}, pipeline {pipeline}");
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), pipeline, "the caller keeps its priority");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_history_page_answers_while_the_sink_holds_the_global_pool() {
        let dir = tempfile::tempdir().unwrap();
        let dataset = Dataset {
            investors: 2,
            portfolios: 3,
            rows: 400,
            start: crate::market::parse_timestamp("2026-11-24 09:50:00").unwrap(),
            seed: 11,
            step: 20,
        };
        // An archive over three hours: the page reads its files in parallel.
        crate::archive::generate::generate(&dataset, dir.path()).unwrap();
        let view = WebView {
            board: Default::default(),
            updates: tokio::sync::broadcast::channel(4).0,
            data: dir.path().to_path_buf(),
            investors: None,
            metrics: crate::metrics::Metrics::new(),
            queries: Arc::new(super::super::query_threads().unwrap()),
        };
        let held = GlobalPoolHeld::hold();
        let params = RangeParams { from: None, to: None, format: None };
        let page = portfolio(State(view), Path("2.3".to_string()), Query(params));
        let answered = tokio::time::timeout(Duration::from_secs(60), page).await;
        drop(held);
        let response = answered.expect("answered while the global pool was held").unwrap();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let navs: Vec<f64> = body["rows"].as_array().unwrap().iter().map(|row| row["nav"].as_f64().unwrap()).collect();
        let id: PortfolioId = "2.3".parse().unwrap();
        let written: Vec<f64> = Walk::new(&dataset, id).map(|row| row.nav).collect();
        assert_eq!(navs, written, "the page shows the rows the generator wrote, in order");
    }
}
