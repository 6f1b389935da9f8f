//! Produce → consume throughput and latency of a bus.
//!
//! A producer task sends `messages` values of `size` bytes in batches
//! (each value starts with its send time); one consumer in a fresh group
//! reads them all. Throughput is messages over the time from the first
//! send to the last receipt; latency is receipt time minus send time.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::bus::{Bus, Consumer, Record, TopicSpec};

/// What to run.
#[derive(Debug, Clone)]
pub struct BusBench {
    /// Messages to send.
    pub messages: usize,
    /// Bytes per value.
    pub size: usize,
    /// Messages per produce batch.
    pub batch: usize,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct BusReport {
    /// Messages received (all of them).
    pub messages: usize,
    /// From the first send to the last receipt.
    pub elapsed: Duration,
    /// Median produce→consume latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl BusReport {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the benchmark on `bus`, on a fresh topic.
pub async fn run<B: Bus>(bus: B, bench: &BusBench) -> anyhow::Result<BusReport> {
    let topic = format!("stockd-bench-{}", std::process::id());
    bus.create_topics(&[TopicSpec { name: topic.clone(), partitions: 1, replication: 1 }]).await?;
    let mut consumer = bus.consumer(&format!("{topic}-group"), &[&topic])?;
    // Join the group (Kafka) before timing anything.
    consumer.poll(1, Duration::from_millis(500)).await?;
    let origin = Instant::now();
    let producer = {
        let (bus, topic, bench) = (bus.clone(), topic.clone(), bench.clone());
        tokio::spawn(async move {
            let mut sent = 0;
            while sent < bench.messages {
                let n = bench.batch.min(bench.messages - sent);
                let records = (0..n)
                    .map(|i| {
                        let mut value = vec![b'x'; bench.size.max(16)];
                        value[..8].copy_from_slice(&(origin.elapsed().as_nanos() as u64).to_le_bytes());
                        value[8..16].copy_from_slice(&((sent + i) as u64).to_le_bytes());
                        Record { key: format!("k{}", (sent + i) % 64), value }
                    })
                    .collect();
                bus.produce_batch(&topic, records).await?;
                sent += n;
            }
            anyhow::Ok(())
        })
    };
    let mut latencies = Vec::with_capacity(bench.messages);
    let deadline = Instant::now() + Duration::from_secs(120);
    while latencies.len() < bench.messages {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} messages arrived in 120 s",
            latencies.len(),
            bench.messages
        );
        for message in consumer.poll(10_000, Duration::from_millis(200)).await? {
            let received = origin.elapsed().as_nanos() as u64;
            let sent = u64::from_le_bytes(message.value[..8].try_into().context("a benchmark value")?);
            latencies.push(received.saturating_sub(sent) as f64);
        }
    }
    let elapsed = origin.elapsed();
    producer.await??;
    latencies.sort_by(f64::total_cmp);
    let nanos = |p| Duration::from_nanos(super::percentile(&latencies, p) as u64);
    Ok(BusReport { messages: latencies.len(), elapsed, p50: nanos(50.0), p99: nanos(99.0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;

    #[tokio::test]
    async fn every_message_is_measured() {
        let report = run(MemoryBus::default(), &BusBench { messages: 5000, size: 100, batch: 1000 }).await.unwrap();
        assert_eq!(report.messages, 5000);
        assert!(report.p50 <= report.p99);
        assert!(report.rate() > 0.0);
    }
}
