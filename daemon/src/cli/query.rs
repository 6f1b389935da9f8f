//! `stockd query` (App2) and `stockd gen-data`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::output::Format;
use crate::market::{ACCEPTED_FORMS, PortfolioId, parse_timestamp};
use crate::query::batch::Interval;
use crate::query::generate::{Dataset, generate};
use crate::query::{Query, plot, plot_series, report, run as answer};

/// Lines drawn at most when plotting every portfolio.
const PLOT_LIMIT: usize = 20;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// A portfolio (e.g. 2.1) whose rows to list; the statistics of every portfolio follow.
    #[arg(value_name = "PORTFOLIO")]
    portfolio: Option<String>,
    /// Start of the interval, included [default: the beginning].
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the interval, included [default: the end].
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// The data folder the sink writes.
    #[arg(long, env = "STOCKD_DATA", value_name = "DIR", default_value = "data")]
    data: PathBuf,
    /// Output format: table (2 decimals), or csv/json (full precision).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also draw NAV over time into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Only the portfolio's rows: skip the statistics (and the other files).
    #[arg(long, requires = "portfolio")]
    no_stats: bool,
}

fn time(flag: &str, text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|t| {
        parse_timestamp(t)
            .map(|at| at.and_utc().timestamp())
            .map_err(|_| anyhow::anyhow!("--{flag} {t:?} is not a time; use {ACCEPTED_FORMS}"))
    })
    .transpose()
}

pub fn run(args: &QueryArgs) -> anyhow::Result<ExitCode> {
    let portfolio =
        args.portfolio.as_deref().map(|p| p.parse::<PortfolioId>().map_err(|e| anyhow::anyhow!("{e}"))).transpose()?;
    let interval = Interval { from: time("from", args.from.as_deref())?, to: time("to", args.to.as_deref())? };
    if let (Some(from), Some(to)) = (interval.from, interval.to)
        && from > to
    {
        bail!("--from {} is after --to {}", args.from.as_deref().unwrap_or(""), args.to.as_deref().unwrap_or(""));
    }
    let query = Query { data: args.data.clone(), portfolio, interval, stats: !args.no_stats };
    let answer = answer(&query)?;
    for warning in &answer.warnings {
        eprintln!("warning: {warning}");
    }
    match args.format {
        Format::Table => std::io::stdout().lock().write_all(report::table(&query, &answer).as_bytes())?,
        Format::Csv => report::write_csv(std::io::stdout().lock(), &query, &answer)?,
        Format::Json => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            report::write_json(&mut out, &query, &answer)?;
            writeln!(out)?;
        }
    }
    if let Some(path) = &args.plot {
        let series = plot_series(&query, &answer, PLOT_LIMIT)?;
        if portfolio.is_none() && answer.stats.len() > PLOT_LIMIT {
            eprintln!("note: the plot shows the first {PLOT_LIMIT} of {} portfolios", answer.stats.len());
        }
        let title = match portfolio {
            Some(p) => format!("NAV of portfolio {p}"),
            None => "NAV by portfolio".to_string(),
        };
        plot::draw(path, &title, &series).map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct GenDataArgs {
    /// Investors 1..=N.
    #[arg(long, default_value_t = 3)]
    investors: u32,
    /// Portfolios per investor.
    #[arg(long, default_value_t = 2)]
    portfolios: u32,
    /// Rows per portfolio, --step seconds apart.
    #[arg(long, default_value_t = 1000)]
    rows: u32,
    /// Seconds between two rows of a portfolio.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::query::generate::STEP_SECONDS)]
    step: i64,
    /// Write the rows as an archive (Parquet hour partitions under
    /// DIR/archive/ and their summaries) instead of CSV files: how to make
    /// days of history at the seed's scale for a benchmark in minutes.
    #[arg(long)]
    archive: bool,
    /// Time of the first row.
    #[arg(long, value_name = "TIME", default_value = "2026-11-24 09:00:00")]
    start: String,
    /// Seed of the random walks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The folder to write (created if needed).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub fn gen_data(args: &GenDataArgs) -> anyhow::Result<ExitCode> {
    if args.investors == 0 || args.portfolios == 0 {
        bail!("--investors and --portfolios must be at least 1");
    }
    if args.step < 1 {
        bail!("--step must be at least 1 second");
    }
    let start = parse_timestamp(&args.start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let dataset = Dataset {
        investors: args.investors,
        portfolios: args.portfolios,
        rows: args.rows,
        start,
        seed: args.seed,
        step: args.step,
    };
    if args.archive {
        let written = crate::archive::generate::generate(&dataset, &args.dir)
            .with_context(|| format!("writing {}", args.dir.display()))?;
        eprintln!(
            "wrote {} rows of {} portfolios into {} Parquet files, {} hour and {} day summaries under {}",
            written.rows,
            written.portfolios,
            written.files,
            written.hours,
            written.days,
            args.dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let files = generate(&dataset, &args.dir).with_context(|| format!("writing {}", args.dir.display()))?;
    eprintln!("wrote {files} portfolio files of {} rows into {}", args.rows, args.dir.display());
    Ok(ExitCode::SUCCESS)
}
