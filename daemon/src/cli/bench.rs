//! `stockd bench`: the measured figures behind docs/PERFORMANCE.md.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::bench::bus::{self, BusBench};
use crate::bus::{KafkaBus, KafkaSettings, MemoryBus};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Produce → consume throughput and latency of the memory bus, or of Kafka with --brokers.
    Bus {
        /// Kafka brokers; without them, the memory bus.
        #[arg(long, value_name = "HOST:PORT,…")]
        brokers: Option<String>,
        /// Messages to send.
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        /// Bytes per message value.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Messages per produce batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match &args.what {
        Bench::Bus { brokers, messages, size, batch } => {
            let bench = BusBench { messages: *messages, size: *size, batch: *batch };
            let (name, report) = runtime.block_on(async {
                match brokers {
                    None => Ok::<_, anyhow::Error>((
                        "memory bus".to_string(),
                        bus::run(MemoryBus::default(), &bench).await?,
                    )),
                    Some(brokers) => {
                        let kafka = KafkaBus::connect(KafkaSettings {
                            brokers: brokers.clone(),
                            client_id: "stockd-bench".into(),
                        })?;
                        Ok((format!("kafka bus ({brokers})"), bus::run(kafka, &bench).await?))
                    }
                }
            })?;
            println!(
                "{name}: {} messages of {} bytes in batches of {}: {:.0} msg/s ({:.3} s); produce→consume latency p50 {:?}, p99 {:?}",
                report.messages,
                size,
                batch,
                report.rate(),
                report.elapsed.as_secs_f64(),
                report.p50,
                report.p99
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
