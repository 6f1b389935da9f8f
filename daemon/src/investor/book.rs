//! An investor's price book: the latest price of every ticker, from the
//! ticks consumed so far, in offset order.

use std::collections::BTreeMap;

use crate::bus::{Message, Positions};
use crate::market::{Tick, TickError};

/// Latest prices, and the positions of the ticks they reflect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceBook {
    prices: BTreeMap<String, f64>,
    positions: Positions,
}

/// What applying a batch did.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// Ticks that set a price.
    pub ticks: u64,
    /// Messages skipped because the book already reflects them (replayed
    /// after a restart).
    pub replayed: u64,
    /// Malformed messages, with their reasons.
    pub rejected: Vec<(i64, TickError)>,
}

impl PriceBook {
    /// A book restored from a checkpoint.
    pub fn restore(prices: BTreeMap<String, f64>, positions: Positions) -> Self {
        PriceBook { prices, positions }
    }

    /// Applies ticks in order. A message at or before the book's position
    /// is skipped; a malformed one is rejected (its position still
    /// advances: it will never become valid).
    pub fn apply(&mut self, messages: &[Message]) -> Applied {
        let mut applied = Applied::default();
        for message in messages {
            if self.positions.covers(message) {
                applied.replayed += 1;
                continue;
            }
            match Tick::decode(&message.value) {
                Ok(tick) => {
                    self.prices.insert(tick.ticker, tick.price);
                    applied.ticks += 1;
                }
                Err(error) => applied.rejected.push((message.offset, error)),
            }
            self.positions.advance(message);
        }
        applied
    }

    /// The latest price of `ticker`.
    pub fn price(&self, ticker: &str) -> Option<f64> {
        self.prices.get(ticker).copied()
    }

    /// Every latest price.
    pub fn prices(&self) -> &BTreeMap<String, f64> {
        &self.prices
    }

    /// Per partition, the next offset to read.
    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Forgets the positions (they belong to another bus).
    pub fn forget_positions(&mut self) {
        self.positions = Positions::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64, value: &str) -> Message {
        Message {
            topic: "StockExchange".into(),
            partition: 0,
            offset,
            key: None,
            value: value.as_bytes().to_vec().into(),
        }
    }

    fn tick(offset: i64, ticker: &str, price: f64) -> Message {
        message(offset, &format!(r#"{{"TICK":"{ticker}","PRICE":{price},"TS":"2026-11-24 09:40:20"}}"#))
    }

    #[test]
    fn keeps_the_latest_price_and_skips_what_it_already_reflects() {
        let mut book = PriceBook::default();
        let applied = book.apply(&[tick(0, "IBM", 100.0), tick(1, "AAPL", 50.0), tick(2, "IBM", 101.5)]);
        assert_eq!(applied.ticks, 3);
        assert_eq!(book.price("IBM"), Some(101.5));
        assert_eq!(book.positions().get("StockExchange", 0), Some(3));
        // A restart replays from an older committed offset: offsets 1 and 2
        // are already in the book and must not move IBM back.
        let applied = book.apply(&[tick(1, "AAPL", 50.0), tick(2, "IBM", 101.5), tick(3, "IBM", 99.0)]);
        assert_eq!((applied.ticks, applied.replayed), (1, 2));
        assert_eq!(book.price("IBM"), Some(99.0));
    }

    #[test]
    fn rejects_malformed_ticks_and_moves_on() {
        let mut book = PriceBook::default();
        let applied = book.apply(&[
            message(0, "garbage"),
            tick(1, "IBM", 100.0),
            message(2, r#"{"TICK":"IBM","PRICE":-1,"TS":"2026-11-24"}"#),
        ]);
        assert_eq!(applied.ticks, 1);
        assert_eq!(applied.rejected.len(), 2);
        assert_eq!(applied.rejected[1].0, 2);
        assert_eq!(book.price("IBM"), Some(100.0));
        assert_eq!(book.positions().get("StockExchange", 0), Some(3));
    }
}
