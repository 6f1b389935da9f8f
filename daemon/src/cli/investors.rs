//! `stockd investors`: what is in a plugin folder.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::output::{Format, print_csv, print_json, print_table};
use super::{PluginDirArg, open_registry};

#[derive(Debug, Args)]
pub struct InvestorsArgs {
    #[command(flatten)]
    dir: PluginDirArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Serialize)]
struct InvestorView<'a> {
    investor: u32,
    name: &'a str,
    file: String,
    portfolios: Vec<PortfolioView<'a>>,
}

#[derive(Serialize)]
struct PortfolioView<'a> {
    portfolio: String,
    holdings: Vec<HoldingView<'a>>,
}

#[derive(Serialize)]
struct HoldingView<'a> {
    ticker: &'a str,
    shares: f64,
}

pub fn run(args: &InvestorsArgs) -> anyhow::Result<ExitCode> {
    let (registry, failures) = open_registry(&args.dir)?;
    let plugins = registry.plugins();
    let views: Vec<InvestorView> = plugins
        .values()
        .map(|image| InvestorView {
            investor: image.investor().get(),
            name: image.name(),
            file: image.path().display().to_string(),
            portfolios: image
                .portfolio_ids()
                .zip(image.portfolios())
                .map(|(id, portfolio)| PortfolioView {
                    portfolio: id.to_string(),
                    holdings: portfolio
                        .holdings
                        .iter()
                        .map(|h| HoldingView { ticker: &h.ticker, shares: h.shares })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    match args.format {
        Format::Json => print_json(&views)?,
        Format::Csv => {
            let rows: Vec<Vec<String>> = views
                .iter()
                .flat_map(|v| {
                    v.portfolios.iter().flat_map(move |p| {
                        p.holdings.iter().map(move |h| {
                            vec![
                                v.investor.to_string(),
                                v.name.to_string(),
                                p.portfolio.clone(),
                                h.ticker.to_string(),
                                h.shares.to_string(),
                            ]
                        })
                    })
                })
                .collect();
            print_csv(&["INVESTOR", "NAME", "PORTFOLIO", "TICKER", "SHARES"], &rows)?;
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = views
                .iter()
                .flat_map(|v| {
                    v.portfolios.iter().map(move |p| {
                        let holdings: Vec<String> =
                            p.holdings.iter().map(|h| format!("{} {}", h.ticker, h.shares)).collect();
                        vec![v.investor.to_string(), v.name.to_string(), p.portfolio.clone(), holdings.join(", ")]
                    })
                })
                .collect();
            print_table(&["INVESTOR", "NAME", "PORTFOLIO", "HOLDINGS (TICKER SHARES)"], &rows, &[0])?;
        }
    }
    Ok(failures.exit_code())
}
