//! The live web view, served with `/metrics` and `/health` on `--http ADDR`:
//! pages for the portfolios (live), one portfolio's history, the investors
//! and the market, and the JSON API behind them (`docs/WEB.md`).
//!
//! - [`board`]: the state shown, kept by [`feed`] from the bus and the CSVs;
//! - [`api`]: the JSON routes and the live event stream;
//! - [`assets`]: the pages, compiled into the binary.
//!
//! Read-only: nothing here writes files or talks back to the pipeline.

pub mod api;
pub mod assets;
pub mod board;
pub mod feed;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::investor::StatusBoard;
use crate::metrics::Metrics;
use crate::plugin::PluginRegistry;
use board::Board;
use feed::{Source, Update};

/// Live events buffered per browser; a browser further behind skips to the
/// latest (the events only say "fetch again"), counted in
/// `stockd_web_events_dropped_total`.
const EVENTS_PER_CLIENT: usize = 64;

/// The routes of the view, to serve beside `/metrics` and `/health`.
pub fn routes(view: WebView) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(assets::page))
        .route("/portfolio/{id}", get(assets::page))
        .route("/investors", get(assets::page))
        .route("/market", get(assets::page))
        .route("/assets/app.js", get(assets::script))
        .route("/assets/style.css", get(assets::style))
        .route("/api/portfolios", get(api::portfolios))
        .route("/api/portfolios/{id}", get(api::portfolio))
        .route("/api/investors", get(api::investors))
        .route("/api/market", get(api::market))
        .route("/api/events", get(api::events))
        .with_state(view)
}

/// What the web routes read. Cheap to clone.
#[derive(Clone)]
pub struct WebView {
    pub(crate) board: Arc<RwLock<Board>>,
    pub(crate) updates: broadcast::Sender<Update>,
    pub(crate) data: PathBuf,
    /// The plugin folder and the investors' status, when this process
    /// runs the investors.
    pub(crate) investors: Option<(Arc<PluginRegistry>, StatusBoard)>,
    pub(crate) metrics: Metrics,
    /// The threads the history pages' queries read on: their own, so that a
    /// page never waits behind the sink's work on rayon's global pool in
    /// the same process (a CSV window cut of a million files held pages
    /// for over a minute).
    pub(crate) queries: Arc<rayon::ThreadPool>,
}

impl WebView {
    /// Starts the view: the topics followed from their ends until `stop`,
    /// and meanwhile the last rows of the files in `data` (read on a
    /// blocking thread: a million files take seconds). `investors` (when this process runs
    /// them) feeds the investors page: a change of the plugin folder is a
    /// live `investors` event.
    pub fn start<B: Bus>(
        bus: &B,
        topics: (&str, &str),
        groups: &crate::groups::Groups,
        data: PathBuf,
        investors: Option<(Arc<PluginRegistry>, StatusBoard)>,
        metrics: Metrics,
        stop: &CancellationToken,
    ) -> Result<WebView, rayon::ThreadPoolBuildError> {
        let queries = Arc::new(query_threads()?);
        let board = Arc::new(RwLock::new(Board::default()));
        let (updates, _) = broadcast::channel(EVENTS_PER_CLIENT);
        tokio::spawn(feed::load_files(data.clone(), Arc::clone(&board), updates.clone()));
        let (stock_exchange, portfolios) = topics;
        for (topic, source) in [(portfolios, Source::Valuations), (stock_exchange, Source::Trades)] {
            tokio::spawn(feed::follow(
                bus.clone(),
                topic.to_string(),
                source,
                groups.private("web-view", topic),
                Arc::clone(&board),
                updates.clone(),
                stop.clone(),
            ));
        }
        if let Some((registry, _)) = &investors {
            tokio::spawn(feed::announce_plugin_changes(registry.subscribe(), updates.clone(), stop.clone()));
        }
        Ok(WebView { board, updates, data, investors, metrics, queries })
    }
}

/// The nice value of the history pages' query threads: on a machine the
/// pipeline keeps busy, a page waits for the CPU and the sink does not (at
/// 1,000 × 1,000 on 2 cores, a page every 3 s at the default priority put
/// the sink a whole interval behind).
const QUERY_NICE: i32 = 10;

/// A pool of one thread per core for the history pages' queries, each at
/// nice [`QUERY_NICE`] at least.
fn query_threads() -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|index| format!("web-query-{index}"))
        .start_handler(|_| lower_priority())
        .build()
}

/// Lowers the calling thread's CPU priority to nice [`QUERY_NICE`] unless
/// it is lower already (on Linux the nice value is per thread, and
/// `setpriority(PRIO_PROCESS, 0)` sets the calling thread's).
fn lower_priority() {
    let lowered = rustix::process::getpriority_process(None)
        .and_then(|nice| rustix::process::setpriority_process(None, nice.max(QUERY_NICE)));
    if let Err(error) = lowered {
        tracing::warn!("a history page query thread keeps the pipeline's CPU priority (setpriority: {error})");
    }
}
