//! The investor runtime end to end, on both buses: exchanges with a fixed
//! seed and millisecond cadence, the three seed investors at a 200 ms
//! interval. Every published valuation is checked against an independent
//! replay of the StockExchange topic; hot reload and crashes must keep
//! NAV_Change continuous.

mod common;
mod pipeline;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::{cents, holdings, holdings_v2};
use stockd::bus::{Bus, MemoryBus, Message};
use stockd::config::{Config, Role};
use stockd::market::{Tick, Valuation};

/// Valuations of one investor, cut into intervals: consecutive messages
/// whose portfolios are distinct make one interval.
fn intervals_of(valuations: &[Valuation]) -> BTreeMap<u32, Vec<Vec<Valuation>>> {
    let mut by_investor: BTreeMap<u32, Vec<Vec<Valuation>>> = BTreeMap::new();
    for v in valuations {
        let intervals = by_investor.entry(v.portfolio.investor.get()).or_default();
        match intervals.last_mut() {
            Some(last) if !last.iter().any(|seen| seen.portfolio == v.portfolio) && last[0].at == v.at => {
                last.push(v.clone())
            }
            _ => intervals.push(vec![v.clone()]),
        }
    }
    by_investor
}

/// Checks that every interval's NAVs are the Σ shares × price of the
/// latest prices after some prefix of the tick log, the prefixes growing
/// from interval to interval, with holdings from `holdings_of` (by
/// portfolio set). Returns the number of intervals checked.
fn check_navs_against_replay(
    ticks: &[Message],
    valuations: &[Valuation],
    holdings_of: impl Fn(&[Valuation], &str) -> &'static [(&'static str, f64)],
) -> usize {
    let ticks: Vec<Tick> =
        ticks.iter().map(|m| Tick::decode(&m.value).expect("the exchanges publish valid ticks")).collect();
    let mut checked = 0;
    for (investor, intervals) in intervals_of(valuations) {
        let mut prefix = 0;
        let mut prices: HashMap<&str, f64> = HashMap::new();
        for interval in intervals {
            let expected = |prices: &HashMap<&str, f64>| -> Option<Vec<f64>> {
                interval
                    .iter()
                    .map(|v| {
                        let id = v.portfolio.to_string();
                        holdings_of(&interval, &id)
                            .iter()
                            .map(|(t, s)| prices.get(t).map(|p| s * p))
                            .sum::<Option<f64>>()
                            .map(cents)
                    })
                    .collect()
            };
            let actual: Vec<f64> = interval.iter().map(|v| v.nav).collect();
            loop {
                if expected(&prices).as_deref() == Some(&actual[..]) {
                    break;
                }
                assert!(prefix < ticks.len(), "investor {investor}: no prefix of the tick log explains {interval:?}");
                prices.insert(&ticks[prefix].ticker, ticks[prefix].price);
                prefix += 1;
            }
            checked += 1;
        }
    }
    checked
}

/// Checks each portfolio's NAV_Change and NAV_Change_% against its previous
/// valuation (0 and 0 the first time). An exact repeat of the previous
/// message with a non-zero change (an outbox republished after a crash) is
/// allowed, skipped and counted. (Two intervals in the same second with
/// unchanged prices also give identical messages, with a zero change:
/// those are checked like any other.)
fn check_changes(valuations: &[Valuation]) -> usize {
    let mut previous: HashMap<String, Valuation> = HashMap::new();
    let mut repeats = 0;
    for v in valuations {
        let id = v.portfolio.to_string();
        match previous.get(&id) {
            Some(p) if p == v && v.nav_change != 0.0 => {
                repeats += 1;
                continue;
            }
            Some(p) => {
                assert_eq!(v.nav_change, cents(v.nav - p.nav), "{id}: change after {p:?} → {v:?}");
                let pct = if p.nav == 0.0 { 0.0 } else { cents((v.nav - p.nav) / p.nav * 100.0) };
                assert_eq!(v.nav_change_pct, pct, "{id}: percentage after {p:?} → {v:?}");
            }
            None => assert_eq!((v.nav_change, v.nav_change_pct), (0.0, 0.0), "{id}: first valuation"),
        }
        previous.insert(id, v.clone());
    }
    repeats
}

fn decode_all(messages: &[Message]) -> Vec<Valuation> {
    messages
        .iter()
        .map(|m| {
            let v = Valuation::decode(&m.value).expect("investors publish valid valuations");
            assert_eq!(m.key_text(), v.portfolio.to_string(), "key = portfolio id");
            v
        })
        .collect()
}

async fn every_valuation_matches_a_replay_of_the_ticks<B: Bus>(bus: B) {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline::fast_config(dir.path(), &[Role::Exchange, Role::Investors]);
    let mut follower = pipeline::follow(&bus, &config).await;
    let running = pipeline::start(&bus, &config);
    follower.wait_for(&[1, 2, 3], 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.stop().await;
    let ticks = pipeline::read_all(&bus, &config.topics.stock_exchange, Duration::from_secs(1)).await;
    let valuations = decode_all(&pipeline::read_all(&bus, &config.topics.portfolios, Duration::from_secs(1)).await);
    assert!(ticks.len() > 100, "{} ticks", ticks.len());
    let by_investor = intervals_of(&valuations);
    assert_eq!(by_investor.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    for (investor, intervals) in &by_investor {
        assert!(intervals.len() >= 8, "investor {investor}: only {} intervals in 2 s at 200 ms", intervals.len());
        assert!(intervals.iter().all(|i| i.len() == 2), "investor {investor}: two portfolios per interval");
        let names: Vec<&str> = intervals.iter().flatten().map(|v| v.investor.as_deref().unwrap()).collect();
        assert!(names.iter().all(|n| *n == format!("Investor {investor}")));
    }
    let checked = check_navs_against_replay(&ticks, &valuations, |_, id| holdings(id).unwrap());
    assert!(checked >= 24);
    assert_eq!(check_changes(&valuations), 0, "no repeats without a crash");
    // The checkpoints say where each investor stopped.
    for n in 1..=3 {
        let state = stockd::investor::InvestorState::load(&config.data.join(format!(".state/investor-{n}.json")))
            .unwrap()
            .unwrap();
        assert_eq!(state.pending, None, "the last interval is recorded as published");
        assert_eq!(state.navs.len(), 2);
        let last = by_investor[&n].last().unwrap();
        assert_eq!(state.navs[&1], last[0].nav, "checkpointed NAV = last published");
    }
}

async fn a_replaced_plugin_switches_at_an_interval_boundary_and_keeps_nav_changes_continuous<B: Bus>(bus: B) {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline::fast_config(dir.path(), &[Role::Exchange, Role::Investors]);
    let mut follower = pipeline::follow(&bus, &config).await;
    let running = pipeline::start(&bus, &config);
    follower.wait_for(&[2], 6).await;
    common::deploy("investor2_v2", &config.plugins, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    follower.wait_for(&[2], 6).await;
    running.stop().await;
    let ticks = pipeline::read_all(&bus, &config.topics.stock_exchange, Duration::from_secs(1)).await;
    let valuations = decode_all(&pipeline::read_all(&bus, &config.topics.portfolios, Duration::from_secs(1)).await);
    let intervals = &intervals_of(&valuations)[&2];
    let sets: Vec<Vec<String>> =
        intervals.iter().map(|i| i.iter().map(|v| v.portfolio.to_string()).collect()).collect();
    let switch = sets.iter().position(|s| *s == ["2.1", "2.3"]).expect("the new version published");
    assert!(switch >= 3, "the old version ran first: {sets:?}");
    assert!(sets[..switch].iter().all(|s| *s == ["2.1", "2.2"]), "old intervals are whole: {sets:?}");
    assert!(sets[switch..].iter().all(|s| *s == ["2.1", "2.3"]), "new intervals are whole: {sets:?}");
    // 2.1 continues from its last old NAV; 2.3 starts at 0 and 0.
    let before = &intervals[switch - 1][0];
    let after = &intervals[switch][0];
    assert_eq!(after.nav_change, cents(after.nav - before.nav));
    assert_eq!((intervals[switch][1].nav_change, intervals[switch][1].nav_change_pct), (0.0, 0.0));
    check_changes(&valuations);
    let v2_from = intervals[switch][0].clone();
    check_navs_against_replay(&ticks, &valuations, move |interval, id| {
        if interval.iter().any(|v| v.portfolio.number == 3) || (id.starts_with("2.") && interval[0] == v2_from) {
            holdings_v2(id).unwrap()
        } else {
            holdings(id).or_else(|| holdings_v2(id)).unwrap()
        }
    });
}

/// Starts the pipeline and waits until every investor has published `more`
/// valuations in this start (what earlier runs published read first: a
/// crash comes once each investor values again, its group formed).
///
/// On Kafka, tansu 0.6 can leave an investor group's tick partition with a
/// member of a crashed run after its session timed out (Kafka gives it to
/// the live member; the investor then values nothing, by design, while
/// another member holds its ticks): after 30 s, three times the session
/// timeout, the pipeline is stopped and started again, its joining
/// splitting the partitions anew, as an operator would. (A member that
/// leaves a group while the group forms stays its leader on tansu 0.6, and
/// the group never forms again: crashing only once every investor valued
/// in this start keeps the test clear of that broker bug.)
async fn start_publishing<B: Bus>(
    bus: &B,
    config: &Config,
    follower: &mut pipeline::Follower<B::Consumer>,
    more: usize,
) -> pipeline::Running {
    follower.catch_up(Duration::from_millis(500)).await;
    let mut starts = 0;
    loop {
        let running = pipeline::start(bus, config);
        starts += 1;
        if follower.published_within(&[1, 2, 3], more, Duration::from_secs(30)).await {
            return running;
        }
        assert!(starts < 3, "the investors did not publish in {starts} starts of 30 s: {:?}", follower.per_investor);
        eprintln!("an investor did not publish within 30 s ({:?}): starting again", follower.per_investor);
        running.stop().await;
    }
}

async fn crashes_at_random_points_keep_nav_changes_continuous<B: Bus>(bus: B) {
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline::fast_config(dir.path(), &[Role::Exchange, Role::Investors]);
    let mut follower = pipeline::follow(&bus, &config).await;
    // Each round: wait until the investors publish, then crash at a point
    // spread over the 200 ms interval (and a bit beyond).
    for millis in [130u64, 270, 10, 390, 50, 160, 230, 90] {
        let running = start_publishing(&bus, &config, &mut follower, 2).await;
        tokio::time::sleep(Duration::from_millis(millis)).await;
        running.crash().await;
    }
    let running = start_publishing(&bus, &config, &mut follower, 4).await;
    running.stop().await;
    let ticks = pipeline::read_all(&bus, &config.topics.stock_exchange, Duration::from_secs(1)).await;
    let messages = pipeline::read_all(&bus, &config.topics.portfolios, Duration::from_secs(1)).await;
    let valuations = decode_all(&messages);
    assert!(valuations.len() >= 60, "{} valuations", valuations.len());
    let repeats = check_changes(&valuations);
    eprintln!("{} valuations, {repeats} republished after crashes", valuations.len());
    let distinct: Vec<Valuation> = {
        let mut last: HashMap<String, Valuation> = HashMap::new();
        valuations
            .into_iter()
            .filter(|v| v.nav_change == 0.0 || last.insert(v.portfolio.to_string(), v.clone()).as_ref() != Some(v))
            .collect()
    };
    check_navs_against_replay(&ticks, &distinct, |_, id| holdings(id).unwrap());
}

/// A plugin that always times out is quarantined after `quarantine-after`
/// failed intervals, never delays the other investors, and comes back when
/// its file is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_investor_is_quarantined_without_delaying_the_others() {
    let bus = MemoryBus::default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = pipeline::fast_config(dir.path(), &[Role::Exchange, Role::Investors]);
    config.investors.quarantine_after = 3;
    config.investors.call_timeout = Duration::from_millis(150);
    common::deploy("looper", &config.plugins, 4);
    let mut follower = pipeline::follow(&bus, &config).await;
    let running = pipeline::start(&bus, &config);
    follower.wait_for(&[1, 2, 3], 2).await;
    let started = std::time::Instant::now();
    follower.wait_for(&[1], 20).await;
    let elapsed = started.elapsed();
    // 10 intervals of investor 1 while the looper burnt 150 ms in each of
    // its first three: about 2 s, not 10 × (200 + 150) ms.
    assert!(elapsed < Duration::from_millis(2600), "investor 1 was slowed down: 10 intervals took {elapsed:?}");
    let timeouts = r#"stockd_plugin_errors_total{investor="4",kind="timeout"}"#;
    assert_eq!(pipeline::metric(&running.metrics, timeouts), 3.0, "three timeouts, then quarantine: no more calls");
    assert_eq!(pipeline::metric(&running.metrics, "stockd_investors_quarantined"), 1.0);
    assert_eq!(follower.per_investor.get(&4), None, "nothing published for the failing investor");
    // Replacing the file lifts the quarantine.
    common::deploy("investor1", &config.plugins, 4);
    follower.wait_for(&[4], 4).await;
    running.stop().await;
}

on_both_buses!(
    every_valuation_matches_a_replay_of_the_ticks,
    a_replaced_plugin_switches_at_an_interval_boundary_and_keeps_nav_changes_continuous,
    crashes_at_random_points_keep_nav_changes_continuous,
);
