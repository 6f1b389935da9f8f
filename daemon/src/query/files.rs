//! Finding the portfolio files of a data folder: `INVESTOR_i_PORTFOLIO_p.csv`
//! with canonical numbers ≥ 1. Anything else in the folder is ignored.

use std::path::{Path, PathBuf};

use crate::layout::portfolio_of;
use crate::market::PortfolioId;

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
