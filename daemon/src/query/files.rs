//! Finding the portfolio files of a data folder: `INVESTOR_i_PORTFOLIO_p.csv`
//! with canonical numbers ≥ 1. Anything else in the folder is ignored.

use std::path::{Path, PathBuf};

use crate::market::{InvestorId, PortfolioId};

/// The portfolio a file name stands for, if it is a portfolio file.
pub fn portfolio_of(name: &str) -> Option<PortfolioId> {
    let (investor, portfolio) = name.strip_prefix("INVESTOR_")?.strip_suffix(".csv")?.split_once("_PORTFOLIO_")?;
    PortfolioId::new(investor.parse::<InvestorId>().ok()?, portfolio.parse::<InvestorId>().ok()?.get()).ok()
}

/// Every portfolio file of `data`, sorted by investor then portfolio.
pub fn discover(data: &Path) -> std::io::Result<Vec<(PortfolioId, PathBuf)>> {
    let mut files: Vec<(PortfolioId, PathBuf)> = std::fs::read_dir(data)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let id = portfolio_of(entry.file_name().to_str()?)?;
            Some((id, entry.path()))
        })
        .collect();
    files.sort_by_key(|(id, _)| *id);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_portfolio_file_names_count() {
        assert_eq!(portfolio_of("INVESTOR_12_PORTFOLIO_3.csv").map(|p| p.to_string()).as_deref(), Some("12.3"));
        for name in [
            "INVESTOR_0_PORTFOLIO_1.csv",
            "INVESTOR_1_PORTFOLIO_01.csv",
            "INVESTOR_1_PORTFOLIO_1.csv.tmp",
            "investors.csv",
            "rejected.jsonl",
            "INVESTOR_1_PORTFOLIO_.csv",
            "INVESTOR_x_PORTFOLIO_1.csv",
        ] {
            assert_eq!(portfolio_of(name), None, "{name}");
        }
    }
}
