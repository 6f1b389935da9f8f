//! `stockd config`: the effective configuration and where each setting came
//! from.

use std::process::ExitCode;

use clap::{ArgMatches, Args};

use super::output::{Format, print_csv, print_json, print_table};
use super::settings::SettingsArgs;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    settings: SettingsArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub fn run(args: &ConfigArgs, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let sourced = args.settings.load(matches)?;
    let rows: Vec<Vec<String>> =
        sourced.settings().into_iter().map(|(key, value, source)| vec![key, value, source.to_string()]).collect();
    match args.format {
        Format::Table => {
            let exists = sourced.file.exists();
            println!(
                "configuration file: {}{}",
                sourced.file.display(),
                if exists { "" } else { " (not found: defaults)" }
            );
            print_table(&["KEY", "VALUE", "SOURCE"], &rows, &[])?;
        }
        Format::Csv => print_csv(&["KEY", "VALUE", "SOURCE"], &rows)?,
        Format::Json => {
            let object: serde_json::Map<String, serde_json::Value> = rows
                .into_iter()
                .map(|row| {
                    let [key, value, source] = <[String; 3]>::try_from(row).expect("three columns");
                    (key, serde_json::json!({ "value": value, "source": source }))
                })
                .collect();
            print_json(&object)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
