//! `stockd archive`: builds a data folder's Parquet archive from its CSV
//! files (history written before the archive existed).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::archive::import::import;
use crate::format::bytes;

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The data folder (stop the sink writing it first).
    #[arg(long, env = "STOCKD_DATA", value_name = "DIR", default_value = "data")]
    data: PathBuf,
}

pub fn run(args: &ArchiveArgs) -> anyhow::Result<ExitCode> {
    if !args.data.is_dir() {
        anyhow::bail!("no data folder {}", args.data.display());
    }
    let imported = import(&args.data)?;
    let per_row = if imported.rows == 0 { 0.0 } else { imported.bytes as f64 / imported.rows as f64 };
    println!(
        "archived {} rows of {} portfolio files into {} Parquet files under {} ({}, {per_row:.1} bytes per row){}",
        imported.rows,
        imported.files,
        imported.parquet_files,
        args.data.join(crate::archive::DIR).display(),
        bytes(imported.bytes),
        if imported.skipped > 0 {
            format!("; {} corrupt rows skipped (see the warnings)", imported.skipped)
        } else {
            String::new()
        }
    );
    println!(
        "summarised {} hour(s) under {}",
        imported.summaries,
        args.data.join(crate::archive::summary::DIR).display()
    );
    println!("stockd query now reads the archive; a sink with sink.csv-window set may cut the CSV files");
    Ok(ExitCode::SUCCESS)
}
