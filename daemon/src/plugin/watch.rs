//! Hot reload: watches the plugin folder and refreshes the registry when a
//! plugin file has settled.
//!
//! Only events that mean "a file is complete" are acted on: a file closed
//! after writing (`cp`), renamed into place (`mv`, the recommended atomic
//! deployment) or removed. Reads (including the registry's own) and
//! in-progress writes are ignored. Each path is refreshed once it has been
//! quiet for the debounce period, on this module's own thread, so
//! compilation never blocks the async runtime.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::registry::PluginRegistry;

/// What the watcher thread is told.
enum Signal {
    /// This path may have changed.
    Path(PathBuf),
    /// Events were lost (queue overflow): rescan the folder.
    Rescan,
}

/// Keeps the registry in step with its folder until dropped.
pub struct RegistryWatcher {
    _watcher: RecommendedWatcher,
}

impl RegistryWatcher {
    /// Starts watching `registry`'s folder; changes are applied after
    /// `debounce` of quiet per file.
    pub fn start(registry: Arc<PluginRegistry>, debounce: Duration) -> notify::Result<Self> {
        let (signals, received) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let signal = match event {
                Ok(event) if event.need_rescan() => vec![Signal::Rescan],
                Ok(event) if settles_a_file(&event.kind) => event.paths.into_iter().map(Signal::Path).collect(),
                Ok(_) => Vec::new(),
                Err(error) => {
                    tracing::warn!("plugin folder watch error (rescanning): {error}");
                    vec![Signal::Rescan]
                }
            };
            for signal in signal {
                // The thread is gone only when the watcher is being dropped.
                let _ = signals.send(signal);
            }
        })?;
        watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;
        std::thread::Builder::new()
            .name("stockd-plugin-watch".to_string())
            .spawn(move || apply_settled_changes(&registry, &received, debounce))
            .map_err(notify::Error::io)?;
        Ok(RegistryWatcher { _watcher: watcher })
    }
}

/// Whether an event means a file may now be complete (or gone).
fn settles_a_file(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_)
    )
}

/// The watcher thread: waits until each signalled path has been quiet for
/// `debounce`, then refreshes it. Ends when the watcher is dropped.
fn apply_settled_changes(registry: &PluginRegistry, received: &mpsc::Receiver<Signal>, debounce: Duration) {
    let mut due: HashMap<PathBuf, Instant> = HashMap::new();
    let mut rescan_due: Option<Instant> = None;
    loop {
        let next = due.values().chain(rescan_due.iter()).min().copied();
        let wait = next.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
        match received.recv_timeout(wait) {
            Ok(Signal::Path(path)) => {
                due.insert(path, Instant::now() + debounce);
            }
            Ok(Signal::Rescan) => rescan_due = Some(Instant::now() + debounce),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        if rescan_due.is_some_and(|at| at <= now) {
            rescan_due = None;
            due.clear();
            if let Err(error) = registry.rescan() {
                tracing::warn!("{error}");
            }
        }
        let settled: Vec<PathBuf> = due.extract_if(|_, at| *at <= now).map(|(path, _)| path).collect();
        for path in settled {
            registry.refresh(&path);
        }
    }
}
