//! `stockd run`: the daemon.

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgMatches, Args};
use tokio_util::sync::CancellationToken;

use super::settings::SettingsArgs;
use crate::metrics::Metrics;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    settings: SettingsArgs,
}

pub fn run(args: &RunArgs, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let sourced = args.settings.load(matches)?;
    let config = sourced.config;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("stockd").build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signals(shutdown.clone()));
        crate::node::run(config, Metrics::new(), shutdown).await
    })?;
    // Blocking tasks (a plugin call, a commit) finish on their own; don't wait.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(ExitCode::SUCCESS)
}

/// The first SIGINT or SIGTERM stops the daemon in order; a second one exits
/// at once (the checkpoints keep that safe).
async fn stop_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        tracing::warn!("cannot listen for signals: stop with SIGKILL");
        return;
    };
    for received in 0.. {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        if received == 0 {
            tracing::info!("stopping: finishing the work in flight (signal again to exit at once)");
            shutdown.cancel();
        } else {
            tracing::warn!("exiting at once");
            std::process::exit(130);
        }
    }
}
