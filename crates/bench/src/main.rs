//! `mosaic-bench`: runs one benchmark and prints its table (or one per phase) (markdown, or JSON with `--json`).

use clap::Parser as _;
use mosaic_bench::Cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reports = runtime.block_on(cli.run())?;
    println!("{}", cli.render(&reports));
    Ok(())
}
