//! A loaded, validated plugin file, from which instances are made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::bindings::{InvestorPre, Portfolio};
use super::error::PluginError;
use super::instance::PluginInstance;
use super::script::SharedScript;
use super::shared::{GuestState, HostShared};
use crate::market::{InvestorId, PortfolioId};

/// Longest investor name accepted.
const MAX_NAME_CHARS: usize = 80;
/// Longest ticker accepted.
const MAX_TICKER_CHARS: usize = 32;

/// A compiled and validated investor plugin: its name and portfolios are
/// known and sane. Instances are made from it with
/// [`instantiate`](Self::instantiate); it is shared (`Arc`) between the
/// registry and the runtimes using it.
pub struct PluginImage {
    investor: InvestorId,
    name: String,
    portfolios: Vec<Portfolio>,
    tickers: Vec<String>,
    path: PathBuf,
    generation: u64,
    pub(crate) pre: InvestorPre<GuestState>,
    /// The script the interpreter `pre` runs (`None`: a component).
    script: Option<SharedScript>,
    pub(crate) shared: Arc<HostShared>,
}

impl std::fmt::Debug for PluginImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginImage")
            .field("investor", &self.investor)
            .field("name", &self.name)
            .field("path", &self.path)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Each successful load gets a new generation, so that a runtime can tell a
/// replaced plugin from the one it runs.
static GENERATION: AtomicU64 = AtomicU64::new(1);

impl PluginImage {
    /// Instantiates once, asks for `name` and `portfolios`, and checks them.
    pub(crate) fn validate(
        investor: InvestorId,
        path: &Path,
        pre: InvestorPre<GuestState>,
        script: Option<SharedScript>,
        shared: Arc<HostShared>,
    ) -> Result<Self, PluginError> {
        let mut probe = PluginInstance::probe(investor, pre.clone(), script.clone(), Arc::clone(&shared));
        let name = probe.call_name()?;
        let portfolios = probe.call_portfolios()?;
        let invalid = |reason: String| PluginError::InvalidPortfolios { investor, reason };
        check_name(&name).map_err(invalid)?;
        let tickers = check_portfolios(investor, &portfolios).map_err(invalid)?;
        Ok(PluginImage {
            investor,
            name,
            portfolios,
            tickers,
            path: path.to_path_buf(),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            pre,
            script,
            shared,
        })
    }

    /// A fresh instance (instantiated lazily, on its first call).
    pub fn instantiate(self: &Arc<Self>) -> PluginInstance {
        let declared = self.portfolios().iter().map(|p| p.id).collect::<BTreeSet<u32>>().into_iter().collect();
        PluginInstance::new(self.investor(), self.pre.clone(), self.script.clone(), Arc::clone(&self.shared), declared)
    }

    /// The investor N this plugin was loaded as.
    pub fn investor(&self) -> InvestorId {
        self.investor
    }

    /// The display name the plugin gave.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The portfolios the plugin declared, in its order.
    pub fn portfolios(&self) -> &[Portfolio] {
        &self.portfolios
    }

    /// The ids `N.P` of the declared portfolios.
    pub fn portfolio_ids(&self) -> impl Iterator<Item = PortfolioId> + '_ {
        self.portfolios.iter().map(|p| PortfolioId { investor: self.investor, number: p.id })
    }

    /// Every ticker held by any portfolio, sorted, once each.
    pub fn tickers(&self) -> &[String] {
        &self.tickers
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A number that is new for every successful load of any plugin.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() {
        return Err("name() returned an empty name".to_string());
    }
    if chars > MAX_NAME_CHARS {
        return Err(format!("name() returned {chars} characters, more than {MAX_NAME_CHARS}"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("name() returned {name:?}, which has control characters"));
    }
    Ok(())
}

/// Checks ids and holdings; returns the sorted set of tickers held.
fn check_portfolios(investor: InvestorId, portfolios: &[Portfolio]) -> Result<Vec<String>, String> {
    if portfolios.is_empty() {
        return Err("portfolios() returned no portfolio".to_string());
    }
    let mut ids = BTreeSet::new();
    let mut tickers = BTreeSet::new();
    for portfolio in portfolios {
        let id = portfolio.id;
        if id == 0 {
            return Err("portfolio id 0 (ids start at 1)".to_string());
        }
        if !ids.insert(id) {
            return Err(format!("portfolio {investor}.{id} is declared twice"));
        }
        if portfolio.holdings.is_empty() {
            return Err(format!("portfolio {investor}.{id} has no holdings"));
        }
        for holding in &portfolio.holdings {
            let ticker = &holding.ticker;
            if ticker.is_empty()
                || ticker.chars().count() > MAX_TICKER_CHARS
                || ticker.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(format!("portfolio {investor}.{id} holds an invalid ticker {ticker:?}"));
            }
            if !holding.shares.is_finite() || holding.shares < 0.0 {
                return Err(format!("portfolio {investor}.{id} holds {} shares of {ticker}", holding.shares));
            }
            tickers.insert(ticker.clone());
        }
    }
    Ok(tickers.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::super::bindings::Holding;
    use super::*;

    fn portfolio(id: u32, holdings: &[(&str, f64)]) -> Portfolio {
        Portfolio {
            id,
            holdings: holdings.iter().map(|&(ticker, shares)| Holding { ticker: ticker.to_string(), shares }).collect(),
        }
    }

    #[test]
    fn accepts_sane_portfolios_and_collects_tickers() {
        let investor = InvestorId::new(1).unwrap();
        let tickers =
            check_portfolios(investor, &[portfolio(1, &[("IBM", 1.0), ("AAPL", 0.5)]), portfolio(2, &[("IBM", 3.0)])]);
        assert_eq!(tickers.unwrap(), ["AAPL", "IBM"]);
    }

    #[test]
    fn rejects_each_kind_of_bad_portfolio() {
        let investor = InvestorId::new(1).unwrap();
        let cases: Vec<(Vec<Portfolio>, &str)> = vec![
            (vec![], "no portfolio"),
            (vec![portfolio(0, &[("IBM", 1.0)])], "id 0"),
            (vec![portfolio(1, &[("IBM", 1.0)]), portfolio(1, &[("FB", 1.0)])], "declared twice"),
            (vec![portfolio(1, &[])], "no holdings"),
            (vec![portfolio(1, &[("", 1.0)])], "invalid ticker"),
            (vec![portfolio(1, &[("I B M", 1.0)])], "invalid ticker"),
            (vec![portfolio(1, &[("IBM", -1.0)])], "-1 shares"),
            (vec![portfolio(1, &[("IBM", f64::NAN)])], "NaN shares"),
        ];
        for (portfolios, expected) in cases {
            let error = check_portfolios(investor, &portfolios).unwrap_err();
            assert!(error.contains(expected), "{error:?} should mention {expected:?}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert!(check_name("Investor 1").is_ok());
        assert!(check_name("  ").is_err());
        assert!(check_name("evil\nname").is_err());
        assert!(check_name(&"x".repeat(81)).is_err());
    }
}
