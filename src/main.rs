//! `mediabot` command line: a thin layer over the library.

use clap::{Parser, Subcommand};

/// Linux-native host for app-hosted media calling bots, with a local Graph calling emulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emulator + bot in one process on loopback, a few scripted calls, and a report.
    Demo,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => anyhow::bail!("demo is not wired yet"),
    }
}
