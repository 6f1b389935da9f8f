//! Investors as source files: `investorN.py` and `investorN.js` run by
//! stockd's interpreter components (`just plugins` builds them into
//! `target/interpreters`). The seed's investors as scripts value exactly as
//! the Rust ones; a script's mistakes are named with file and line; hostile
//! scripts are contained like hostile components; a script dropped into a
//! running daemon's folder is valued, and replaced without a gap.

mod common;
mod daemon;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{opening_quotes, test_plugin, wait_until};
use daemon::{Daemon, csv_rows, seed_plugins, write_fast_config};
use stockd::market::InvestorId;
use stockd::plugin::{PluginError, PluginHost, PluginImage, PluginLimits, PluginRegistry, Quote};

/// The interpreter components `just plugins` builds.
fn interpreters() -> PathBuf {
    let dir = common::test_plugins_dir().parent().unwrap().join("interpreters");
    for file in ["python.wasm", "js.wasm"] {
        assert!(dir.join(file).exists(), "{} is missing: run `just plugins` first", dir.join(file).display());
    }
    dir
}

/// A host running scripts, with the tests' shared compiled cache.
fn host() -> PluginHost {
    let cache = Some(common::test_plugins_dir().join(".cache"));
    PluginHost::with_interpreters(PluginLimits::default(), cache, Some(interpreters())).unwrap()
}

/// The repository's `plugins/scripts` folder.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/scripts")
}

/// Writes `text` as investor `n`'s script `investorN.EXTENSION` in `dir`.
fn write_script(dir: &Path, n: u32, extension: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("investor{n}.{extension}"));
    std::fs::write(&path, text).unwrap();
    path
}

fn load(host: &PluginHost, path: &Path, n: u32) -> Result<Arc<PluginImage>, PluginError> {
    host.load(InvestorId::new(n).unwrap(), path).map(Arc::new)
}

/// The seed's prices moved: every ticker up by a different fraction.
fn moved_quotes() -> Vec<Quote> {
    opening_quotes()
        .into_iter()
        .enumerate()
        .map(|(i, quote)| Quote { price: quote.price * (1.0 + i as f64 / 97.0), ..quote })
        .collect()
}

#[test]
fn the_seed_investors_as_python_and_javascript_scripts_value_exactly_as_the_rust_ones() {
    let host = host();
    for n in 1..=3u32 {
        let rust = Arc::new(host.load(InvestorId::new(n).unwrap(), &test_plugin(&format!("investor{n}"))).unwrap());
        for extension in ["py", "js"] {
            let path = scripts().join(format!("investor{n}.{extension}"));
            let script = load(&host, &path, n).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(script.name(), format!("Investor {n}"), "{}", path.display());
            assert_eq!(script.portfolios(), rust.portfolios(), "{}: the Rust investor's holdings", path.display());
            for quotes in [opening_quotes(), moved_quotes()] {
                let want = rust.instantiate().evaluate(&quotes).unwrap();
                let got = script.instantiate().evaluate(&quotes).unwrap();
                assert_eq!(got, want, "{}: the same NAVs, bit for bit", path.display());
            }
        }
    }
    // Investor 1.1 at the opening prices, by hand: 1000 × 123.20 + 1200 ×
    // 125.35 + 900 × 264.30 + 2300 × 3159.50 + 1400 × 2083.80 + 400 × 71.90.
    let script = load(&host, &scripts().join("investor1.py"), 1).unwrap();
    let navs = script.instantiate().evaluate(&opening_quotes()).unwrap();
    assert!((navs[0].nav - 10_724_420.0).abs() < 1e-6, "{}", navs[0].nav);
}

#[test]
fn a_python_script_may_import_the_preloaded_standard_library() {
    let dir = tempfile::tempdir().unwrap();
    let text = "import statistics, math, decimal, fractions, datetime, json, collections, itertools\n\
                import functools, random, re, bisect, heapq, dataclasses, typing, enum\n\
                NAME = 'Stdlib'\nPORTFOLIOS = {1: {'IBM': 2, 'AAPL': 4}}\n\
                def evaluate(prices):\n    \
                    return {1: statistics.mean([prices['IBM'], prices['AAPL']]) + math.fsum([0.0])}\n";
    let path = write_script(dir.path(), 5, "py", text);
    let image = load(&host(), &path, 5).unwrap();
    let navs = image.instantiate().evaluate(&opening_quotes()).unwrap();
    assert_eq!(navs[0].nav, (123.20 + 125.35) / 2.0);
}

/// The load error of `text` as investor 7's script.
fn load_error(extension: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_script(dir.path(), 7, extension, text);
    load(&host(), &path, 7).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn a_script_that_cannot_run_fails_to_load_naming_its_file_and_line() {
    let cases = [
        (
            "py",
            "NAME = 'x'\nPORTFOLIOS = {1: {'IBM': 1}}\ndef evaluate(prices)\n    return {}\n",
            "investor 7: investor7.py, line 3: SyntaxError: expected ':'",
        ),
        (
            "py",
            "NAME = 'x'\nPORTFOLIOS = {1: {'IBM': 1}}\n",
            "investor 7: investor7.py: no function evaluate(prices); define one that returns {portfolio id: NAV}",
        ),
        (
            "py",
            "NAME = 'x'\nPORTFOLIOS = [1, 2]\ndef evaluate(p): return {}\n",
            "investor 7: investor7.py: PORTFOLIOS must be a dict of dicts, e.g. PORTFOLIOS = {1: {\"IBM\": 1000, \"AAPL\": 1200}}",
        ),
        (
            "py",
            "NAME = 'x'\nPORTFOLIOS = {1: {'IBM': 'many'}}\ndef evaluate(p): return {}\n",
            "investor 7: investor7.py: PORTFOLIOS[1] holds 'IBM': 'many'; holdings are ticker (a string) -> shares (a finite number >= 0)",
        ),
        (
            "py",
            "NAME = 'x'\n\nimport subprocess_that_is_not_there\n",
            "investor 7: investor7.py, line 3: ModuleNotFoundError: No module named 'subprocess_that_is_not_there'",
        ),
        ("py", "NAME = 'x'\nx = 1 / 0\n", "investor 7: investor7.py, line 2: ZeroDivisionError: division by zero"),
        (
            "js",
            "export const NAME = 'x';\nexport const PORTFOLIOS = {1: {IBM: 1}};\nexport function evaluate(prices) {\n  return {;\n}\n",
            "investor 7: investor7.js, line 4: SyntaxError:",
        ),
        (
            "js",
            "export const NAME = 'x';\nexport const PORTFOLIOS = {1: {IBM: 1}};\n",
            "investor 7: investor7.js: no function evaluate(prices); export one that returns { portfolioId: NAV }",
        ),
        (
            "js",
            "export const NAME = 'x';\nexport const PORTFOLIOS = {1: {IBM: -1}};\nexport function evaluate() { return {}; }\n",
            "investor 7: investor7.js: PORTFOLIOS[1] holds \"IBM\": -1; holdings are ticker -> shares (a finite number >= 0)",
        ),
        (
            "js",
            "export const NAME = 'x';\n\nundefinedFunction();\n",
            "investor 7: investor7.js, line 3: ReferenceError: undefinedFunction is not defined",
        ),
        (
            "js",
            "export const NAME = 'x';\nexport function evaluate( {\n",
            "investor 7: investor7.js, line 2 (the end of the file): SyntaxError:",
        ),
        (
            "js",
            "import x from 'y';\n",
            "investor 7: investor7.js, line 1: only `export const|let|var|function` is supported here, and no `import`",
        ),
    ];
    for (extension, text, want) in cases {
        let message = load_error(extension, text);
        assert!(message.starts_with(want), "{extension}: {text:?}\nwant: {want}\ngot:  {message}");
    }
}

/// `evaluate`'s error for investor 7's `text` at the opening prices.
fn evaluate_error(extension: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_script(dir.path(), 7, extension, text);
    let image = load(&host(), &path, 7).unwrap_or_else(|e| panic!("{e}"));
    image.instantiate().evaluate(&opening_quotes()).unwrap_err().to_string()
}

#[test]
fn an_exception_in_evaluate_publishes_nothing_and_names_the_line() {
    let head_py = "NAME = 'x'\nPORTFOLIOS = {1: {'IBM': 1}}\ndef evaluate(prices):\n";
    let head_js =
        "export const NAME = 'x';\nexport const PORTFOLIOS = {1: {IBM: 1}};\nexport function evaluate(prices) {\n";
    let cases = [
        (
            "py",
            format!("{head_py}    return {{1: prices['NOPE']}}\n"),
            "investor 7: evaluate returned an error: investor7.py, line 4: KeyError: 'NOPE'",
        ),
        (
            "py",
            format!("{head_py}    return {{1: 'a lot'}}\n"),
            "investor 7: evaluate returned an error: investor7.py: evaluate returned 'a lot' for portfolio 1: a NAV is a number",
        ),
        (
            "py",
            format!("{head_py}    return [1]\n"),
            "investor 7: evaluate returned an error: investor7.py: evaluate returned list, not a dict of portfolio id -> NAV",
        ),
        (
            "py",
            format!("{head_py}    return {{1: 1, 2: 2}}\n"),
            "investor 7: invalid valuation: a NAV for portfolio 7.2, which the plugin does not declare",
        ),
        (
            "js",
            format!("{head_js}  null.price;\n}}\n"),
            "investor 7: evaluate returned an error: investor7.js, line 4: TypeError:",
        ),
        (
            "js",
            format!("{head_js}  throw new Error('no quote today');\n}}\n"),
            "investor 7: evaluate returned an error: investor7.js, line 4: Error: no quote today",
        ),
        (
            "js",
            format!("{head_js}  return {{1: 'a lot'}};\n}}\n"),
            "investor 7: evaluate returned an error: investor7.js: evaluate returned \"a lot\" for portfolio 1: a NAV is a number",
        ),
    ];
    for (extension, text, want) in cases {
        let message = evaluate_error(extension, &text);
        assert!(message.starts_with(want), "{extension}: {text:?}\nwant: {want}\ngot:  {message}");
    }
}

/// A hostile script as investor 9 beside the seed's investor 1 as a Python
/// script: after each hostile call investor 1 still values correctly, and
/// the hostile instance comes back for an honest call.
struct Sandbox {
    hostile: stockd::plugin::PluginInstance,
    healthy: stockd::plugin::PluginInstance,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(extension: &str) -> Sandbox {
        let host = host();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("investor9.{extension}"));
        std::fs::copy(scripts().join(format!("test-scripts/hostile.{extension}")), &path).unwrap();
        Sandbox {
            hostile: load(&host, &path, 9).unwrap().instantiate(),
            healthy: load(&host, &scripts().join("investor1.py"), 1).unwrap().instantiate(),
            _dir: dir,
        }
    }

    fn attempt(&mut self, action: &str, price: f64) -> (Result<f64, PluginError>, Duration) {
        let started = Instant::now();
        let quotes = [Quote { ticker: action.to_string(), price }];
        let result = self.hostile.evaluate_at(&quotes, interval_time()).map(|navs| navs[0].nav);
        let took = started.elapsed();
        if let Err(error) = &result {
            assert_eq!(error.investor(), Some(InvestorId::new(9).unwrap()), "{error}");
        }
        let navs = self.healthy.evaluate(&opening_quotes()).unwrap();
        assert!((navs[0].nav - 10_724_420.0).abs() < 1e-6, "the other investor after a hostile call");
        let honest = self.hostile.evaluate(&[Quote { ticker: "IBM".into(), price: 123.2 }]).unwrap();
        assert_eq!(honest[0].nav, 123.2, "the hostile investor's next honest call");
        (result, took)
    }
}

/// The line of the hostile script of `extension` that holds `needle`.
fn hostile_line(extension: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(scripts().join(format!("test-scripts/hostile.{extension}"))).unwrap();
    text.lines().position(|line| line.contains(needle)).expect(needle) + 1
}

/// 2026-11-24 09:40:20 UTC.
fn interval_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_167_620)
}

#[test]
fn hostile_python_scripts_are_contained() {
    let mut sandbox = Sandbox::new("py");
    let (looped, took) = sandbox.attempt("LOOP", 0.0);
    assert_eq!(looped.unwrap_err().to_string(), "investor 9: evaluate timed out after 250ms");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (bomb, _) = sandbox.attempt("BOMB", 0.0);
    assert!(matches!(bomb, Err(PluginError::MemoryExceeded { limit: 67_108_864, .. })), "{bomb:?}");
    let (file, _) = sandbox.attempt("FILE", 0.0);
    let message = file.unwrap_err().to_string();
    let line = hostile_line("py", "open(\"/etc/passwd\")");
    assert!(message.contains(&format!("investor9.py, line {line}: FileNotFoundError")), "{message}");
    let (listener, port) = listener();
    let (socket, _) = sandbox.attempt("SOCKET", f64::from(port));
    let message = socket.unwrap_err().to_string();
    let line = hostile_line("py", "import socket");
    assert!(
        message.contains(&format!("investor9.py, line {line}: ModuleNotFoundError: No module named 'socket'")),
        "{message}"
    );
    assert!(listener.accept().is_err(), "the script reached the listener");
    let (environment, _) = sandbox.attempt("ENV", 0.0);
    assert_eq!(
        environment.unwrap_err().to_string(),
        format!(
            "investor 9: evaluate returned an error: investor9.py, line {}: RuntimeError: environment: {{}}",
            hostile_line("py", "raise RuntimeError")
        )
    );
    let (clock, _) = sandbox.attempt("CLOCK", 0.0);
    assert_eq!(clock.unwrap(), 1_795_167_620.0, "time.time() is the interval's timestamp");
    let (sleep, took) = sandbox.attempt("SLEEP", 0.0);
    assert!(sleep.unwrap() >= 3600.0 && took < Duration::from_millis(250), "a virtual sleep: {took:?}");
    let (subprocess, _) = sandbox.attempt("SUBPROCESS", 0.0);
    let message = subprocess.unwrap_err().to_string();
    assert!(message.contains("investor9.py, line "), "no process runs: {message}");
}

#[test]
fn a_script_sees_no_other_scripts_state() {
    for extension in ["py", "js"] {
        let (mut one, mut other) = (Sandbox::new(extension), Sandbox::new(extension));
        assert_eq!(one.attempt("PLANT", 42.0).0.unwrap(), 42.0);
        assert_eq!(other.attempt("PEEK", 1.0).0.unwrap(), 0.0, "{extension}: another instance's state");
        // Its own instance finds what it planted (twice over in Python:
        // `builtins` and `sys.modules`).
        let own = if extension == "py" { 84.0 } else { 42.0 };
        assert_eq!(one.attempt("PEEK", 1.0).0.unwrap(), own, "{extension}: its own state");
    }
}

#[test]
fn hostile_javascript_scripts_are_contained() {
    let mut sandbox = Sandbox::new("js");
    let (looped, _) = sandbox.attempt("LOOP", 0.0);
    assert_eq!(looped.unwrap_err().to_string(), "investor 9: evaluate timed out after 250ms");
    let (bomb, _) = sandbox.attempt("BOMB", 0.0);
    assert!(matches!(bomb, Err(PluginError::MemoryExceeded { limit: 67_108_864, .. })), "{bomb:?}");
    let (clock, _) = sandbox.attempt("CLOCK", 0.0);
    assert_eq!(clock.unwrap(), 1_795_167_620.0, "Date.now() is the interval's timestamp");
}

fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[test]
fn a_component_and_a_script_for_one_investor_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(test_plugin("investor2"), dir.path().join("investor2.wasm")).unwrap();
    let (registry, _) = PluginRegistry::open(host(), dir.path()).unwrap();
    assert_eq!(registry.plugins()[&InvestorId::new(2).unwrap()].name(), "Investor 2");
    let script = dir.path().join("investor2.py");
    std::fs::copy(scripts().join("investor2.py"), &script).unwrap();
    let change = registry.refresh(&script).to_string();
    let (wasm, py) = (dir.path().join("investor2.wasm"), script.clone());
    assert_eq!(
        change,
        format!(
            "investor 2: {} and {} are all investor 2: keep one; the running version stays in place",
            wasm.display(),
            py.display()
        )
    );
    // Removing the component leaves the script, which takes over.
    std::fs::remove_file(&wasm).unwrap();
    let change = registry.refresh(&wasm).to_string();
    assert_eq!(change, format!("replaced investor 2 (Investor 2) from {}", py.display()));
    assert!(registry.failures().is_empty());
}

#[test]
fn a_script_dropped_into_a_running_daemon_is_valued_and_replaced_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), None);
    let plugins = seed_plugins(dir.path());
    std::os::unix::fs::symlink(interpreters(), plugins.join(".interpreters")).unwrap();
    let data = dir.path().join("data");
    let args = ["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()];
    let args = [&args[..], &["--data", data.to_str().unwrap(), "--interval", "1s"]].concat();
    let mut daemon = Daemon::start(&args, &dir.path().join("stockd.log"));
    daemon.wait_for_log("investor(s) loaded", Duration::from_secs(60));

    let seven = "INVESTOR_7_PORTFOLIO_1.csv";
    let rows_of = |name: &str| csv_rows(&data).get(name).map_or(0, Vec::len);
    let text = std::fs::read_to_string(scripts().join("investor1.py")).unwrap();
    let staging = plugins.join(".investor7.py.tmp");
    std::fs::write(&staging, text.replace("\"Investor 1\"", "\"Investor 7\"")).unwrap();
    let dropped = Instant::now();
    std::fs::rename(&staging, plugins.join("investor7.py")).unwrap();
    assert!(wait_until(Duration::from_secs(30), || rows_of(seven) >= 2), "no rows for 7.1:\n{}", daemon.log());
    eprintln!("script saved -> second row of 7.1: {:?}", dropped.elapsed());

    // The same holdings valued twice over: NAVs double, NAV_Change follows.
    let doubled = text.replace("\"Investor 1\"", "\"Investor 7\"").replace("{id: sum(", "{id: 2 * sum(");
    assert_ne!(doubled, text.replace("\"Investor 1\"", "\"Investor 7\""));
    std::fs::write(&staging, doubled).unwrap();
    std::fs::rename(&staging, plugins.join("investor7.py")).unwrap();
    daemon.wait_for_log("replaced investor 7 (Investor 7)", Duration::from_secs(30));
    let at_switch = rows_of(seven);
    assert!(wait_until(Duration::from_secs(30), || rows_of(seven) >= at_switch + 3), "{}", daemon.log());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());

    let rows = &csv_rows(&data)[seven];
    let values: Vec<(f64, f64)> = rows.iter().map(|row| (row[2].parse().unwrap(), row[3].parse().unwrap())).collect();
    for pair in values.windows(2) {
        let ((before, _), (nav, change)) = (pair[0], pair[1]);
        assert!((change - (nav - before)).abs() < 1e-6, "NAV_Change continuous across the replacement: {values:?}");
    }
    let first = values[0].0;
    assert!(values.iter().any(|&(nav, _)| nav > 1.5 * first), "the replaced script's NAVs: {values:?}");
}

/// An empty plugin folder in `dir` whose scripts find the interpreters.
fn script_folder(dir: &Path) -> PathBuf {
    let plugins = dir.join("investors");
    std::fs::create_dir(&plugins).unwrap();
    std::os::unix::fs::symlink(interpreters(), plugins.join(".interpreters")).unwrap();
    plugins
}

#[test]
fn stockd_value_values_a_folder_of_scripts_without_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = script_folder(dir.path());
    std::fs::copy(scripts().join("investor1.py"), plugins.join("investor1.py")).unwrap();
    std::fs::copy(scripts().join("investor2.js"), plugins.join("investor2.js")).unwrap();
    let prices = dir.path().join("prices.csv");
    let rows: String = opening_quotes().iter().map(|q| format!("{},{}\n", q.ticker, q.price)).collect();
    std::fs::write(&prices, rows).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["value", "--prices", prices.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    // 1.1 by hand (see above); 2.1: 600 × 28.00 + 1200 × 45.70 + 1400 × 385.20
    // + 900 × 141.10 + 800 × 476.60 + 1200 × 57.10.
    for (portfolio, nav) in [("1.1", "10,724,420.00"), ("2.1", "1,187,710.00")] {
        assert!(
            stdout.lines().any(|line| line.contains(portfolio) && line.contains(nav)),
            "{portfolio} at {nav}:\n{stdout}"
        );
    }
}

#[test]
fn a_broken_script_is_reported_in_one_line_without_the_interpreters_trace() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = script_folder(dir.path());
    write_script(&plugins, 6, "py", "NAME = 'x'\nPORTFOLIOS = {1: {'IBM': 1}}\ndef evaluate(prices)\n    return {}\n");
    write_script(&plugins, 7, "js", "export const NAME = 'x';\nexport function evaluate( {\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["investors", "--plugins", plugins.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("investor 6: investor6.py, line 3: SyntaxError: expected ':'"), "{stderr}");
    assert!(stderr.contains("investor 7: investor7.js, line 2 (the end of the file): SyntaxError:"), "{stderr}");
    for noise in ["Traceback", "script_investor", "Stack:", "panicked"] {
        assert!(!stderr.contains(noise), "the interpreter's own trace ({noise}) in the log:\n{stderr}");
    }
}
