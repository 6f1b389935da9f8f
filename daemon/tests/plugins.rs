//! The plugin host against real guests: the seed investors value correctly,
//! every misbehaving guest is contained with its own error, and the registry
//! follows the folder (hot reload).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_close, deploy, opening_quotes, test_plugin, wait_until};
use stockd::market::InvestorId;
use stockd::plugin::{Change, PluginError, PluginHost, PluginImage, PluginLimits, PluginRegistry, RegistryWatcher};

/// A host with the default limits and a compiled-component cache shared by
/// the tests (compiling in a debug build is slow).
fn host() -> PluginHost {
    PluginHost::new(PluginLimits::default(), Some(common::test_plugins_dir().join(".cache"))).unwrap()
}

fn investor(n: u32) -> InvestorId {
    InvestorId::new(n).unwrap()
}

fn load(host: &PluginHost, guest: &str, n: u32) -> Result<Arc<PluginImage>, PluginError> {
    host.load(investor(n), &test_plugin(guest)).map(Arc::new)
}

/// NAVs at the seed's opening prices, computed by hand (exact decimal sums of
/// shares × price over DESIGN.md's holdings), independently of the plugins.
const SEED_NAVS: [(&str, u32, f64); 6] = [
    ("investor1", 1, 10_724_420.00),
    ("investor1", 2, 590_240.00),
    ("investor2", 1, 1_187_710.00),
    ("investor2", 2, 1_451_870.00),
    ("investor3", 1, 1_286_940.00),
    ("investor3", 2, 834_255.00),
];

#[test]
fn seed_investors_value_their_portfolios_at_the_opening_prices() {
    let host = host();
    for guest in ["investor1", "investor2", "investor3"] {
        let n: u32 = guest.trim_start_matches("investor").parse().unwrap();
        let image = load(&host, guest, n).unwrap();
        assert_eq!(image.name(), format!("Investor {n}"));
        assert_eq!(image.portfolios().len(), 2);
        assert!(image.portfolios().iter().all(|p| p.holdings.len() == 6));
        let navs = image.instantiate().evaluate(&opening_quotes()).unwrap();
        for &(_, portfolio, expected) in SEED_NAVS.iter().filter(|(g, ..)| *g == guest) {
            let nav = navs.iter().find(|v| v.portfolio == portfolio).expect("a NAV per portfolio").nav;
            assert_close(nav, expected, &format!("NAV of {n}.{portfolio}"));
        }
    }
}

#[test]
fn seed_investor_holdings_are_the_seeds() {
    let image = load(&host(), "investor3", 3).unwrap();
    let p2 = &image.portfolios()[1];
    let holdings: Vec<(&str, f64)> = p2.holdings.iter().map(|h| (h.ticker.as_str(), h.shares)).collect();
    assert_eq!(p2.id, 2);
    assert_eq!(
        holdings,
        [("VZ", 1150.0), ("AVGO", 900.0), ("TWTR", 1200.0), ("AAPL", 1200.0), ("DELL", 500.0), ("ORKL", 900.0)]
    );
    assert_eq!(image.tickers().len(), 11, "DELL is held twice but listed once: {:?}", image.tickers());
}

#[test]
fn a_missing_price_is_an_error_naming_the_ticker() {
    let image = load(&host(), "investor1", 1).unwrap();
    let quotes: Vec<_> = opening_quotes().into_iter().filter(|q| q.ticker != "AMZN").collect();
    let error = image.instantiate().evaluate(&quotes).unwrap_err();
    assert!(matches!(error, PluginError::Rejected { .. }), "{error:?}");
    assert_eq!(error.to_string(), "investor 1: evaluate returned an error: no price for AMZN (portfolio 1)");
}

/// Runs `guest`'s evaluate as investor 9 and checks that a healthy investor
/// loaded on the same host still values correctly afterwards.
fn evaluate_hostile(guest: &str) -> (PluginError, Duration) {
    let host = host();
    let healthy = load(&host, "investor2", 2).unwrap();
    let hostile = load(&host, guest, 9).unwrap();
    let mut instance = hostile.instantiate();
    let started = Instant::now();
    let error = instance.evaluate(&opening_quotes()).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.investor(), Some(investor(9)));
    // The failed instance is re-created on the next call: same error, not a
    // "cannot enter component instance".
    let again = instance.evaluate(&opening_quotes()).unwrap_err();
    assert_eq!(again.kind(), error.kind(), "second call: {again}");
    let navs = healthy.instantiate().evaluate(&opening_quotes()).unwrap();
    assert_close(navs[0].nav, 1_187_710.00, "healthy investor after a hostile one");
    (error, elapsed)
}

#[test]
fn an_endless_loop_times_out_well_under_two_seconds() {
    let (error, elapsed) = evaluate_hostile("looper");
    assert!(matches!(error, PluginError::Timeout { budget, .. } if budget == Duration::from_millis(250)), "{error:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(250), "stopped before its budget: {elapsed:?}");
    assert_eq!(error.to_string(), "investor 9: evaluate timed out after 250ms");
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let (error, elapsed) = evaluate_hostile("memory_bomb");
    match error {
        PluginError::MemoryExceeded { requested, limit, .. } => {
            assert_eq!(limit, 64 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected MemoryExceeded, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let (error, _) = evaluate_hostile("panicker");
    assert!(matches!(error, PluginError::Trap { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "investor 9: evaluate trapped: wasm trap: wasm `unreachable` instruction executed; stderr: thread"
        ),
        "{message}"
    );
    assert!(message.ends_with("panicker/src/lib.rs:17:9: investor panicked on purpose"), "{message}");
}

#[test]
fn a_plugin_reading_a_host_file_loads_and_finds_no_file() {
    let (error, _) = evaluate_hostile("snooper");
    assert!(matches!(error, PluginError::Rejected { .. }), "{error:?}");
    assert!(error.to_string().starts_with("investor 9: evaluate returned an error: "), "{error}");
}

#[test]
fn nan_and_negative_navs_are_rejected() {
    let (error, _) = evaluate_hostile("bad_nav");
    assert!(matches!(error, PluginError::InvalidValuation { .. }), "{error:?}");
    assert_eq!(error.to_string(), "investor 9: invalid valuation: NAV NaN for portfolio 9.1");
}

#[test]
fn files_that_are_not_investor_components_fail_to_load_with_their_reason() {
    let host = host();
    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("investor5.wasm");
    std::fs::write(&not_wasm, "this is not wasm").unwrap();
    let core_module = dir.path().join("investor6.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();
    let garbage = dir.path().join("investor7.wasm");
    std::fs::write(&garbage, b"\0asm\x0d\0\x01\0garbage").unwrap();

    let error = host.load(investor(5), &not_wasm).unwrap_err();
    assert!(matches!(error, PluginError::NotWasm { .. }), "{error:?}");
    let error = host.load(investor(6), &core_module).unwrap_err();
    assert!(error.to_string().contains("core WebAssembly module, not a component"), "{error}");
    let error = host.load(investor(7), &garbage).unwrap_err();
    assert!(matches!(error, PluginError::Compile { .. }), "{error:?}");
    let error = host.load(investor(8), &dir.path().join("investor8.wasm")).unwrap_err();
    assert!(matches!(error, PluginError::Io { .. }), "{error:?}");

    let error = load(&host, "wrong_world", 4).unwrap_err();
    assert!(matches!(error, PluginError::WrongWorld { .. }), "{error:?}");
    let error = load(&host, "backdoor", 4).unwrap_err();
    assert!(matches!(error, PluginError::ForbiddenImport { .. }), "{error:?}");
    assert!(error.to_string().contains("test:backdoor/shell"), "{error}");
    let error = load(&host, "bad_portfolios", 4).unwrap_err();
    assert_eq!(error.to_string(), "investor 4: invalid portfolios: portfolio id 0 (ids start at 1)");
}

#[test]
fn tighter_limits_apply_to_every_call() {
    let limits =
        PluginLimits { call_timeout: Duration::from_millis(50), max_memory_bytes: 8 << 20, ..PluginLimits::default() };
    let host = PluginHost::new(limits, None).unwrap();
    let mut looper = load(&host, "looper", 1).unwrap().instantiate();
    let started = Instant::now();
    let error = looper.evaluate(&opening_quotes()).unwrap_err();
    assert!(matches!(error, PluginError::Timeout { budget, .. } if budget == Duration::from_millis(50)), "{error:?}");
    // Interrupted long before the default 250 ms budget would have ended it
    // (with room for a loaded machine).
    assert!(started.elapsed() < Duration::from_millis(240), "took {:?}", started.elapsed());
    let error = load(&host, "memory_bomb", 1).unwrap().instantiate().evaluate(&opening_quotes()).unwrap_err();
    assert!(matches!(error, PluginError::MemoryExceeded { limit, .. } if limit == 8 << 20), "{error:?}");
}

#[test]
fn compiled_components_are_cached_by_content() {
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(PluginLimits::default(), Some(cache.path().to_path_buf())).unwrap();
    load(&host, "investor1", 1).unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].extension().is_some_and(|e| e == "cwasm"));
    // A second host (a restart) loads from the cache and values the same.
    let host = PluginHost::new(PluginLimits::default(), Some(cache.path().to_path_buf())).unwrap();
    let navs = load(&host, "investor1", 1).unwrap().instantiate().evaluate(&opening_quotes()).unwrap();
    assert_close(navs[0].nav, 10_724_420.00, "NAV from a cached component");
    // A corrupt entry is discarded and rebuilt, not trusted.
    std::fs::write(&entries[0], b"corrupt").unwrap();
    let navs = load(&host, "investor1", 1).unwrap().instantiate().evaluate(&opening_quotes()).unwrap();
    assert_close(navs[1].nav, 590_240.00, "NAV after a corrupt cache entry");
    assert!(std::fs::metadata(&entries[0]).unwrap().len() > 1000, "entry rebuilt");
}

#[test]
fn a_registry_loads_a_folder_and_ignores_other_names() {
    let dir = tempfile::tempdir().unwrap();
    deploy("investor1", dir.path(), 1);
    deploy("investor3", dir.path(), 3);
    std::fs::copy(test_plugin("investor2"), dir.path().join("notes.wasm")).unwrap();
    std::fs::write(dir.path().join("investor4.wasm"), "junk").unwrap();
    let (registry, changes) = PluginRegistry::open(host(), dir.path()).unwrap();
    let ids: Vec<u32> = registry.plugins().keys().map(|id| id.get()).collect();
    assert_eq!(ids, [1, 3]);
    assert!(changes.iter().any(|c| matches!(c, Change::Ignored(p) if p.ends_with("notes.wasm"))));
    assert!(
        changes.iter().any(|c| matches!(c, Change::Failed { error: PluginError::NotWasm { .. }, kept_running: false }))
    );
    let missing = PluginRegistry::open(host(), dir.path().join("nope")).err().unwrap();
    assert!(missing.to_string().contains("nope"), "{missing}");
}

fn names(registry: &PluginRegistry) -> Vec<(u32, String)> {
    registry.plugins().values().map(|image| (image.investor().get(), image.name().to_string())).collect()
}

fn generation(registry: &PluginRegistry, n: u32) -> Option<u64> {
    registry.plugins().get(&investor(n)).map(|image| image.generation())
}

#[test]
fn hot_reload_follows_copies_renames_deletions_and_keeps_the_old_version_on_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = PluginRegistry::open(host(), dir.path()).unwrap();
    let registry = Arc::new(registry);
    let _watcher = RegistryWatcher::start(Arc::clone(&registry), Duration::from_millis(100)).unwrap();
    let wait = |what: &str, condition: &dyn Fn() -> bool| {
        assert!(
            wait_until(Duration::from_secs(20), condition),
            "timed out waiting for {what}; now {:?}",
            names(&registry)
        );
    };

    // A new file, copied in place with cp (written, then closed).
    std::fs::copy(test_plugin("investor1"), dir.path().join("investor1.wasm")).unwrap();
    wait("investor 1 to load", &|| names(&registry) == [(1, "Investor 1".to_string())]);

    // A new file deployed by atomic rename.
    deploy("investor2", dir.path(), 2);
    wait("investor 2 to load", &|| generation(&registry, 2).is_some());
    let first = generation(&registry, 2).unwrap();
    assert_eq!(registry.plugins()[&investor(2)].portfolios().len(), 2);

    // Replaced by cp over the existing file.
    std::fs::copy(test_plugin("investor2_v2"), dir.path().join("investor2.wasm")).unwrap();
    wait("investor 2 to be replaced", &|| generation(&registry, 2) > Some(first));
    let ids: Vec<u32> = registry.plugins()[&investor(2)].portfolios().iter().map(|p| p.id).collect();
    assert_eq!(ids, [1, 3], "the new version's portfolios");
    let second = generation(&registry, 2).unwrap();

    // A bad replacement leaves the running version in place.
    let staging = dir.path().join(".investor2.staging");
    std::fs::write(&staging, "not a plugin").unwrap();
    std::fs::rename(&staging, dir.path().join("investor2.wasm")).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(generation(&registry, 2), Some(second), "bad file must not replace the running version");

    // A good file again, by rename: replaces it.
    deploy("investor2", dir.path(), 2);
    wait("investor 2 to be replaced again", &|| generation(&registry, 2) > Some(second));

    // Deleted: unloaded.
    std::fs::remove_file(dir.path().join("investor1.wasm")).unwrap();
    wait("investor 1 to unload", &|| generation(&registry, 1).is_none());
    assert_eq!(names(&registry), [(2, "Investor 2".to_string())]);
}

#[test]
fn reading_a_plugin_file_does_not_reload_it() {
    let dir = tempfile::tempdir().unwrap();
    deploy("investor1", dir.path(), 1);
    let (registry, _) = PluginRegistry::open(host(), dir.path()).unwrap();
    let registry = Arc::new(registry);
    let _watcher = RegistryWatcher::start(Arc::clone(&registry), Duration::from_millis(50)).unwrap();
    let before = generation(&registry, 1);
    for _ in 0..5 {
        std::fs::read(dir.path().join("investor1.wasm")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(generation(&registry, 1), before);
    // And an unchanged file touched by an event is not reloaded either.
    assert!(matches!(registry.refresh(&dir.path().join("investor1.wasm")), Change::Unchanged));
}
