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
    /// The bot host against a Graph endpoint (real or emulator), with the demo application.
    Serve(Box<mediabot::adapters::serve_command::ServeArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => anyhow::bail!("demo is not wired yet"),
        Command::Serve(args) => Ok(args.run_blocking()?),
    }
}
