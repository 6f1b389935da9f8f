//! `stockd tail`: print a topic's messages as they arrive (a tiny kcat).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::bus::{Bus, Consumer, KafkaBus, KafkaSettings, Positions};

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The topic, e.g. StockExchange or Portfolios.
    topic: String,
    /// Kafka brokers (host:port,…). The memory bus lives inside `stockd run`, so tail needs Kafka.
    #[arg(long, env = "STOCKD_BROKERS", value_name = "HOST:PORT,…")]
    brokers: String,
    /// Consumer group; its offsets are committed, so the next tail resumes.
    /// Default: a fresh group that reads from the earliest message.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Stop after this many messages [default: never].
    #[arg(long, value_name = "N")]
    count: Option<usize>,
}

pub fn run(args: &TailArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(tail(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn tail(args: &TailArgs) -> anyhow::Result<()> {
    let bus = KafkaBus::connect(KafkaSettings::new(args.brokers.clone(), "stockd-tail"))?;
    let topics = bus.topics().await.context("listing topics")?;
    if !topics.iter().any(|(name, _)| *name == args.topic) {
        let names: Vec<&str> = topics.iter().map(|(name, _)| name.as_str()).collect();
        anyhow::bail!("no topic {:?} on {} (topics: {})", args.topic, args.brokers, names.join(", "));
    }
    let group =
        args.group.clone().unwrap_or_else(|| crate::groups::Groups::default().private("stockd-tail", &args.topic));
    let mut consumer = bus.consumer(&group, &[&args.topic])?;
    let mut printed = 0;
    let mut out = std::io::stdout().lock();
    while args.count.is_none_or(|n| printed < n) {
        let batch = consumer.poll(1000, Duration::from_millis(500)).await?;
        let mut positions = Positions::new();
        for message in batch.iter().take(args.count.map_or(usize::MAX, |n| n - printed)) {
            let value = String::from_utf8_lossy(&message.value);
            writeln!(
                out,
                "{}/{}@{} {} {}",
                message.topic,
                message.partition,
                message.offset,
                message.key_text(),
                value
            )?;
            positions.advance(message);
            printed += 1;
        }
        out.flush()?;
        if args.group.is_some() {
            consumer.commit(&positions).await?;
        }
    }
    Ok(())
}
