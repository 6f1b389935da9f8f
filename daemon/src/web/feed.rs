//! Keeps the [`Board`] current: the last row of every portfolio file when
//! the view starts, then the `Portfolios` and `StockExchange` topics from
//! their ends, in consumer groups of the view's own (it never commits). A
//! reader like the sink: data still flows one way.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::board::Board;
use crate::bus::{Bus, Consumer};
use crate::market::{PortfolioId, Tick, Valuation, ValuationView};

/// Messages taken per poll.
const POLL_BATCH: usize = 10_000;
/// How long a poll waits for the first message.
const POLL_WAIT: Duration = Duration::from_millis(200);

/// What the live event stream says; each means "fetch again".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Update {
    /// Valuations arrived; the newest timestamp is in the board.
    Valuations,
    /// Trades arrived.
    Market,
    /// A plugin was loaded, replaced or removed.
    Investors,
}

/// What a feed follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `Portfolios` topic.
    Valuations,
    /// The `StockExchange` topic.
    Trades,
}

impl Source {
    /// The event a batch from this source is announced with.
    fn update(self) -> Update {
        match self {
            Source::Valuations => Update::Valuations,
            Source::Trades => Update::Market,
        }
    }
}

/// Loads the last row of every portfolio file of `data` into `board`, with
/// the names the sink recorded. Unreadable files and lines are skipped.
pub fn load_last_rows(board: &mut Board, data: &Path) -> usize {
    let names = crate::layout::load_names(data);
    let Ok(files) = crate::layout::portfolio_files(data) else { return 0 };
    let mut loaded = 0;
    for (portfolio, path) in files {
        let Some(row) = last_line(&path) else { continue };
        if let Some(valuation) = parse_row(portfolio, &row, names.get(&portfolio.investor)) {
            board.apply_valuation(valuation);
            loaded += 1;
        }
    }
    loaded
}

/// Loads the last rows of the files of `data` (see [`load_last_rows`]) off
/// the runtime, then adds the portfolios the bus has not brought yet.
pub async fn load_files(data: PathBuf, board: Arc<RwLock<Board>>, updates: broadcast::Sender<Update>) {
    let folder = data.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let mut from_files = Board::default();
        load_last_rows(&mut from_files, &folder);
        from_files
    })
    .await;
    match loaded {
        Ok(from_files) => {
            let count = from_files.len();
            board.write().unwrap_or_else(|poisoned| poisoned.into_inner()).fill_from(from_files);
            tracing::debug!("web view: {count} portfolio(s) from the files in {}", data.display());
            let _ = updates.send(Update::Valuations);
        }
        Err(error) => tracing::warn!("web view: reading the files of {}: {error}", data.display()),
    }
}

/// The last non-empty line of a file (read from its end).
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 512;
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(TAIL))).ok()?;
    let mut tail = String::new();
    file.read_to_string(&mut tail).ok()?;
    tail.lines().rev().find(|line| !line.trim().is_empty()).map(str::to_string)
}

/// A data row of `portfolio`'s file (a corrupt row is none).
fn parse_row(portfolio: PortfolioId, line: &str, name: Option<&String>) -> Option<Valuation> {
    let line = crate::layout::parse_row(line).ok()?;
    if line.portfolio.parse::<PortfolioId>().ok()? != portfolio {
        return None;
    }
    let [nav, nav_change, nav_change_pct] = line.numbers;
    Some(Valuation {
        portfolio,
        at: chrono::DateTime::from_timestamp(line.at, 0)?.naive_utc(),
        nav,
        nav_change,
        nav_change_pct,
        investor: name.cloned(),
        interval_ms: None,
    })
}

/// Follows `topic` (of valuations or of trades, as `source` says) from its
/// end, applying each message to `board` and announcing each batch on
/// `updates`, until `stop`. A message that does not decode is skipped (the
/// sink and the investors log and count those).
pub async fn follow<B: Bus>(
    bus: B,
    topic: String,
    source: Source,
    group: String,
    board: Arc<RwLock<Board>>,
    updates: broadcast::Sender<Update>,
    stop: CancellationToken,
) {
    let mut consumer = match bus.tail_consumer(&group, &[&topic]) {
        Ok(consumer) => consumer,
        Err(error) => {
            tracing::error!("web view: cannot read {topic}: {error}; the view shows no new data");
            return;
        }
    };
    loop {
        let messages = tokio::select! {
            () = stop.cancelled() => return,
            polled = consumer.poll(POLL_BATCH, POLL_WAIT) => match polled {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!("web view: reading {topic}: {error}");
                    tokio::time::sleep(POLL_WAIT).await;
                    continue;
                }
            },
        };
        if messages.is_empty() {
            continue;
        }
        // Decoded before taking the lock: page requests wait only for the
        // board's updates.
        let applied = match source {
            Source::Valuations => {
                let valuations: Vec<ValuationView<'_>> =
                    messages.iter().filter_map(|message| ValuationView::decode(&message.value)).collect();
                let mut board = board.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                valuations.iter().for_each(|valuation| board.apply_view(valuation));
                valuations.len()
            }
            Source::Trades => {
                let ticks: Vec<Tick> =
                    messages.iter().filter_map(|message| Tick::decode(&message.value).ok()).collect();
                let mut board = board.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                ticks.iter().for_each(|tick| board.apply_tick(tick));
                ticks.len()
            }
        };
        if applied > 0 {
            // No receiver (no browser open) is fine.
            let _ = updates.send(source.update());
        }
    }
}

/// Sends an [`Update::Investors`] for every change of the loaded plugins,
/// until `stop`.
pub async fn announce_plugin_changes(
    mut plugins: tokio::sync::watch::Receiver<crate::plugin::PluginSet>,
    updates: broadcast::Sender<Update>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = plugins.changed() => {
                if changed.is_err() {
                    return;
                }
                let _ = updates.send(Update::Investors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_rows_of_the_files_seed_the_board() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("INVESTOR_1_PORTFOLIO_2.csv"),
            "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n1.2,2026-11-24 09:40:20,100.00,0.00,0.00\n1.2,2026-11-24 09:40:40,110.00,10.00,10.00\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("INVESTOR_2_PORTFOLIO_1.csv"), "PORTFOLIO,TIMESTAMP\ngarbage\n").unwrap();
        std::fs::write(dir.path().join("notes.csv"), "1.1,2026-11-24 09:40:20,1,0,0\n").unwrap();
        let mut board = Board::default();
        assert_eq!(load_last_rows(&mut board, dir.path()), 1);
        let entry = board.portfolio("1.2".parse().unwrap()).unwrap();
        assert_eq!((entry.nav, entry.nav_change), (110.0, 10.0));
        assert_eq!(crate::market::format_seconds(entry.timestamp), "2026-11-24 09:40:40");
        assert_eq!(entry.investor, "Investor 1");
    }
}
