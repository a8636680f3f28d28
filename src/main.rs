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
    /// Sound devices (input and output) and the configurations they support (feature `device`).
    Devices,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => anyhow::bail!("demo is not wired yet"),
        Command::Devices => devices(),
    }
}

#[cfg(feature = "device")]
fn devices() -> anyhow::Result<()> {
    let list = mediabot::adapters::device::list_devices()?;
    if list.is_empty() {
        println!("no sound devices");
    }
    for d in list {
        println!("{}", d.name);
        if !d.description.is_empty() {
            println!("    {}", d.description.replace('\n', " / "));
        }
        for (side, configs) in [("input", &d.input), ("output", &d.output)] {
            for c in configs {
                println!("    {side:6}  {c}");
            }
        }
    }
    Ok(())
}

#[cfg(not(feature = "device"))]
fn devices() -> anyhow::Result<()> {
    println!("mediabot was built without sound device support: rebuild with `--features device`");
    Ok(())
}
