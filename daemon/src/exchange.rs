//! The simulated stock exchanges.
//!
//! Each exchange first publishes the opening price of every ticker it
//! lists, then trades forever: it waits a random delay (a whole 2, 3, 4 or
//! 5 seconds by default), picks a random ticker, moves its price and
//! publishes the tick (key = ticker) to the stock topic.

use std::time::Duration;

use chrono::NaiveDateTime;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::config::{ExchangeConfig, MarketConfig, PriceModel};
use crate::market::{Tick, now, round_cents};
use crate::metrics::Metrics;

/// Lowest price a random walk can reach.
const FLOOR_PRICE: f64 = 0.01;

/// One exchange's market: its tickers, their prices and its dice.
pub struct Exchange {
    name: String,
    /// Ticker, opening price, current price.
    tickers: Vec<(String, f64, f64)>,
    model: PriceModel,
    max_step: f64,
    delay_min: Duration,
    delay_steps: u32,
    delay_step: Duration,
    rng: StdRng,
}

impl Exchange {
    /// Exchange number `index` of `market`. With a market seed the sequence
    /// of trades is reproducible (each exchange has its own stream).
    pub fn new(config: &ExchangeConfig, market: &MarketConfig, index: usize) -> Self {
        let rng = match market.seed {
            Some(seed) => StdRng::seed_from_u64(seed.wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))),
            None => rand::make_rng(),
        };
        let span = market.trade_delay_max.saturating_sub(market.trade_delay_min);
        let delay_steps = (span.as_nanos() / market.trade_delay_step.as_nanos().max(1)) as u32;
        Exchange {
            name: config.name.clone(),
            tickers: config.tickers.iter().map(|(t, p)| (t.clone(), *p, *p)).collect(),
            model: market.price_model,
            max_step: market.max_step,
            delay_min: market.trade_delay_min,
            delay_steps,
            delay_step: market.trade_delay_step,
            rng,
        }
    }

    /// The exchange's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One tick per ticker at its opening price.
    pub fn openings(&self, at: NaiveDateTime) -> Vec<Tick> {
        self.tickers.iter().map(|(ticker, open, _)| Tick { ticker: ticker.clone(), price: *open, at }).collect()
    }

    /// How long to wait before the next trade.
    pub fn next_delay(&mut self) -> Duration {
        self.delay_min + self.delay_step * self.rng.random_range(0..=self.delay_steps)
    }

    /// A trade: a random ticker at its new price.
    pub fn trade(&mut self, at: NaiveDateTime) -> Tick {
        let index = self.rng.random_range(0..self.tickers.len());
        let (ticker, open, last) = &mut self.tickers[index];
        let price = match self.model {
            PriceModel::RandomWalk => {
                let step = self.rng.random_range(-self.max_step..=self.max_step);
                round_cents(*last * (1.0 + step)).max(FLOOR_PRICE)
            }
            PriceModel::Seed => round_cents(*open * self.rng.random_range(0.5..=0.6)),
        };
        *last = price;
        Tick { ticker: ticker.clone(), price, at }
    }
}

/// Runs `exchange` until `shutdown`: openings first, then trades. A tick the
/// bus refuses is logged and counted; the exchange goes on.
pub async fn run<B: Bus>(bus: B, topic: String, mut exchange: Exchange, metrics: Metrics, shutdown: CancellationToken) {
    for tick in exchange.openings(now()) {
        publish(&bus, &topic, &exchange, &tick, &metrics).await;
    }
    tracing::info!(exchange = exchange.name(), "opened {} tickers", exchange.tickers.len());
    loop {
        let delay = exchange.next_delay();
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {
                let tick = exchange.trade(now());
                publish(&bus, &topic, &exchange, &tick, &metrics).await;
            }
        }
    }
    tracing::info!(exchange = exchange.name(), "closed");
}

async fn publish<B: Bus>(bus: &B, topic: &str, exchange: &Exchange, tick: &Tick, metrics: &Metrics) {
    match bus.produce(topic, &tick.ticker, tick.encode()).await {
        Ok(_) => {
            metrics.tick_produced(exchange.name());
            tracing::info!(exchange = exchange.name(), ticker = %tick.ticker, price = tick.price, "{} {} {:.2}", exchange.name(), tick.ticker, tick.price);
        }
        Err(error) => {
            metrics.tick_produce_failed(exchange.name());
            tracing::error!(exchange = exchange.name(), ticker = %tick.ticker, "tick not published: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::parse_timestamp;

    fn market(seed: u64, model: PriceModel) -> MarketConfig {
        MarketConfig { seed: Some(seed), price_model: model, ..MarketConfig::default() }
    }

    fn at() -> NaiveDateTime {
        parse_timestamp("2026-11-24 09:40:20").unwrap()
    }

    #[test]
    fn opens_every_ticker_at_its_configured_price() {
        let market = MarketConfig::default();
        let se1 = Exchange::new(&market.exchanges[0], &market, 0);
        let openings = se1.openings(at());
        assert_eq!(openings.len(), 12);
        assert_eq!((openings[0].ticker.as_str(), openings[0].price), ("IBM", 123.20));
        assert_eq!((openings[11].ticker.as_str(), openings[11].price), ("ORKL", 64.70));
    }

    #[test]
    fn the_seed_waits_a_whole_two_to_five_seconds() {
        let market = market(1, PriceModel::RandomWalk);
        let mut se1 = Exchange::new(&market.exchanges[0], &market, 0);
        let delays: std::collections::BTreeSet<u64> = (0..500).map(|_| se1.next_delay().as_millis() as u64).collect();
        assert_eq!(delays.into_iter().collect::<Vec<_>>(), [2000, 3000, 4000, 5000]);
    }

    #[test]
    fn a_random_walk_moves_at_most_max_step_from_the_last_price() {
        let market = market(7, PriceModel::RandomWalk);
        let mut se2 = Exchange::new(&market.exchanges[1], &market, 1);
        let mut last: std::collections::HashMap<String, f64> =
            se2.openings(at()).into_iter().map(|t| (t.ticker, t.price)).collect();
        for _ in 0..2000 {
            let tick = se2.trade(at());
            let before = last[&tick.ticker];
            assert!(tick.price >= FLOOR_PRICE);
            assert!(
                (tick.price - before).abs() <= before * 0.05 + 0.005 + 1e-9,
                "{} {before} -> {}",
                tick.ticker,
                tick.price
            );
            assert_eq!(tick.price, round_cents(tick.price), "cents");
            last.insert(tick.ticker, tick.price);
        }
    }

    #[test]
    fn the_seed_model_draws_from_half_to_six_tenths_of_the_opening() {
        let market = market(3, PriceModel::Seed);
        let mut se1 = Exchange::new(&market.exchanges[0], &market, 0);
        let openings: std::collections::HashMap<String, f64> =
            se1.openings(at()).into_iter().map(|t| (t.ticker, t.price)).collect();
        for _ in 0..500 {
            let tick = se1.trade(at());
            let open = openings[&tick.ticker];
            assert!(tick.price >= round_cents(open * 0.5) && tick.price <= round_cents(open * 0.6), "{tick:?}");
        }
    }

    #[test]
    fn a_seed_makes_the_market_reproducible_and_exchanges_differ() {
        let market = market(42, PriceModel::RandomWalk);
        let trades = |index: usize| {
            let mut exchange = Exchange::new(&market.exchanges[index], &market, index);
            (0..50).map(|_| (exchange.next_delay(), exchange.trade(at()))).collect::<Vec<_>>()
        };
        assert_eq!(trades(0), trades(0));
        assert_ne!(
            trades(0).iter().map(|t| t.0).collect::<Vec<_>>(),
            trades(1).iter().map(|t| t.0).collect::<Vec<_>>()
        );
    }
}
