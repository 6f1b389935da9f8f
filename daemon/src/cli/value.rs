//! `stockd value`: every portfolio valued once at the prices of a file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::output::{Format, print_csv, print_json, print_table};
use super::{PluginDirArg, open_registry, prices};
use crate::format::money;
use crate::plugin::Quote;

#[derive(Debug, Args)]
pub struct ValueArgs {
    /// Prices to value at: JSON {"IBM": 123.2, …} or CSV rows TICK,PRICE.
    #[arg(long, value_name = "FILE")]
    prices: PathBuf,
    #[command(flatten)]
    dir: PluginDirArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// One portfolio's answer: a NAV or the reason there is none.
#[derive(Serialize)]
struct Row {
    portfolio: String,
    investor: String,
    nav: Option<f64>,
    error: Option<String>,
}

pub fn run(args: &ValueArgs) -> anyhow::Result<ExitCode> {
    let prices = prices::read(&args.prices)?;
    let (registry, failures) = open_registry(&args.dir)?;
    let mut rows = Vec::new();
    for image in registry.plugins().values() {
        let quotes: Vec<Quote> = image
            .tickers()
            .iter()
            .filter_map(|ticker| prices.get(ticker).map(|&price| Quote { ticker: ticker.clone(), price }))
            .collect();
        let answer = image.instantiate().evaluate(&quotes);
        for id in image.portfolio_ids() {
            let (nav, error) = match &answer {
                Ok(navs) => (navs.iter().find(|n| n.portfolio == id.number).map(|n| n.nav), None),
                Err(error) => (None, Some(error.to_string())),
            };
            rows.push(Row { portfolio: id.to_string(), investor: image.name().to_string(), nav, error });
        }
    }
    let unvalued = rows.iter().filter(|r| r.nav.is_none()).count();
    match args.format {
        Format::Json => print_json(&rows)?,
        Format::Csv => {
            let cells = |r: &Row| {
                vec![
                    r.portfolio.clone(),
                    r.nav.map(|n| n.to_string()).unwrap_or_default(),
                    r.investor.clone(),
                    r.error.clone().unwrap_or_default(),
                ]
            };
            print_csv(&["PORTFOLIO", "NAV", "INVESTOR", "ERROR"], &rows.iter().map(cells).collect::<Vec<_>>())?;
        }
        Format::Table => {
            let cells = |r: &Row| {
                vec![
                    r.portfolio.clone(),
                    r.nav.map(money).unwrap_or_default(),
                    r.investor.clone(),
                    r.error.clone().unwrap_or_default(),
                ]
            };
            print_table(&["PORTFOLIO", "NAV", "INVESTOR", "ERROR"], &rows.iter().map(cells).collect::<Vec<_>>(), &[1])?;
        }
    }
    if unvalued > 0 {
        eprintln!("error: {unvalued} portfolio(s) could not be valued (see ERROR)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(failures.exit_code())
}
