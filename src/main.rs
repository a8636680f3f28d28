//! `mediabot` command line: a thin layer over the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mediabot::adapters::tls::TlsIdentity;
use mediabot::emulator::server::{DEFAULT_APP_ID, DEFAULT_APP_SECRET};
use mediabot::emulator::{Emulator, EmulatorConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Linux-native host for app-hosted media calling bots, with a local Graph calling emulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emulator + bot in one process on loopback: concurrent calls with real audio (greeting,
    /// echo, recording), progress while they run, and a report per call.
    Demo(DemoArgs),
    /// N concurrent emulated calls with real media against a bot (in-process by default):
    /// answer latency, media connect, shard ticks, misses, concealment, CPU, RSS per call.
    Load(LoadArgs),
    /// The bot host against a Graph endpoint (real or emulator), with the demo application.
    Serve(Box<mediabot::adapters::serve_command::ServeArgs>),
    /// Sign a saved commsNotifications JSON with the emulator's key, POST it to a bot and show
    /// what the bot did (status, action, deadline, the request it sent).
    Replay(ReplayArgs),
    /// The Graph calling emulator alone (REST, tokens, signed notifications, control API),
    /// for a bot running elsewhere. Serves until Ctrl-C.
    Emulator(Box<EmulatorArgs>),
    /// Sound devices (input and output) and the configurations they support (feature `device`).
    Devices,
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Print the report as one JSON object (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// How long each call stays up once its media is connected (seconds; the callers start
    /// speaking when the greeting is over, about 5 s in). Default 10, or 60 with --device.
    #[arg(long)]
    seconds: Option<f64>,
    /// Join the calls yourself through a sound device (needs `--features device`): the
    /// default input and output, or the device NAME (exact name, else the first whose name
    /// or description contains NAME, ignoring case; `mediabot devices` lists them). The
    /// device joins the first call whose media connects, one call at a time; when that call
    /// ends it moves to the oldest call still connected.
    #[arg(long, value_name = "NAME", num_args = 0..=1)]
    device: Option<Option<String>>,
    /// Where the bot writes its recordings (one directory per call).
    #[arg(long, default_value = "recordings")]
    record_dir: PathBuf,
    /// The signaling-only demo instead: every scenario and fault knob, no media.
    #[arg(long)]
    signaling: bool,
    /// With --signaling: how long each caller stays on the line after the call is
    /// established (ms).
    #[arg(long, default_value_t = 200)]
    hold_ms: u64,
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// Concurrent calls.
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// How long each call is held once its media is connected.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// A bot's calling webhook (it must trust this emulator: see --emulator-listen); default:
    /// the media bot in-process.
    #[arg(long)]
    bot: Option<String>,
    /// Where the emulator listens when --bot is given (its certificate is written to
    /// `$TMPDIR/mediabot-emulator-<port>.pem`).
    #[arg(long, default_value = "127.0.0.1:8443")]
    emulator_listen: SocketAddr,
    /// Record the calls into this directory (in-process bot; off by default).
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// The bot's process id (with --bot, a bot on this machine): CPU and RSS are read from
    /// it, so the figures are the bot's alone. Default for a loopback --bot: the process
    /// listening on its port. Load waits (up to 120 s) for the bot to listen, so the bot can
    /// be started after load's emulator is up.
    #[arg(long, requires = "bot")]
    bot_pid: Option<u32>,
    /// The bot's metrics endpoint (`mediabot serve --metrics-listen ADDR` serves
    /// `http://ADDR/metrics`): its shards' ticks, deadline misses and tick cost are then
    /// reported too.
    #[arg(long, requires = "bot", value_name = "URL")]
    bot_metrics: Option<String>,
    /// The emulator's certificate (PEM), with --emulator-tls-key, so a bot started first can
    /// trust it (default: a fresh self-signed one).
    #[arg(long, requires_all = ["bot", "emulator_tls_key"])]
    emulator_tls_cert: Option<PathBuf>,
    /// The emulator's private key (PEM).
    #[arg(long, requires = "emulator_tls_cert")]
    emulator_tls_key: Option<PathBuf>,
    /// Place the same calls once first, held this many seconds and not measured, so RSS
    /// per call is measured from the bot idle after a warm-up (0 = none).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The saved notification (a commsNotifications body).
    file: PathBuf,
    /// The bot's notification URL. It must trust the emulator given by --emulator (a running
    /// `mediabot emulator`). Without --bot the demo bot and an emulator start in-process.
    #[arg(long)]
    bot: Option<String>,
    /// Base URL of the running emulator the bot trusts.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    emulator: String,
    /// That emulator's certificate (PEM). Default: the file `mediabot emulator` writes for
    /// the emulator's port in the temp directory.
    #[arg(long)]
    emulator_cert: Option<PathBuf>,
    /// Print one JSON object (status, action, deadlineMs, request, …).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The bot's app (client) id registered with the emulated directory.
    #[arg(long, default_value = DEFAULT_APP_ID)]
    app_id: String,
    /// Its client secret.
    #[arg(long, default_value = DEFAULT_APP_SECRET)]
    app_secret: String,
    /// Tenant id of the directory and of rung calls.
    #[arg(long)]
    tenant_id: Option<String>,
    /// Server certificate chain (PEM); with --tls-key. Default: self-signed for localhost.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where to write the server certificate (PEM) for bots to trust.
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// A bot certificate (PEM) to trust when POSTing notifications; repeatable.
    #[arg(long)]
    trust_bot_cert: Vec<PathBuf>,
    /// Accept any bot certificate (development only).
    #[arg(long)]
    accept_invalid_bot_certs: bool,
    /// The URL bots use to reach the emulator (when it is not the listen address, e.g.
    /// behind a proxy or listening on 0.0.0.0).
    #[arg(long)]
    public_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    // Before any thread starts: fewer malloc arenas, less RSS per call (see the module).
    mediabot::adapters::malloc_arenas::limit(mediabot::adapters::malloc_arenas::DEFAULT_ARENAS);
    let cli = Cli::parse();
    // The demo and load print their own progress: only our own warnings (webrtc-rs warns
    // about normal ICE start-up).
    let default_level = match cli.command {
        Command::Demo(_) | Command::Load(_) => "mediabot=warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Demo(args) => runtime.block_on(demo(args)),
        Command::Load(args) => runtime.block_on(load(args)),
        Command::Replay(args) => runtime.block_on(replay(args)),
        Command::Emulator(args) => runtime.block_on(emulator(*args)),
        Command::Devices => devices(),
        // Builds its own runtime and tracing (the bot owner's entry point).
        Command::Serve(args) => {
            drop(runtime);
            Ok(args.run_blocking()?)
        }
    }
}

/// Prints progress lines on stderr as they come; returns the printer's task.
fn progress_printer() -> (
    tokio::sync::mpsc::UnboundedSender<String>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            eprintln!("{line}");
        }
    });
    (tx, task)
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    if args.signaling {
        return signaling_demo(args).await;
    }
    let seconds = args
        .seconds
        .unwrap_or(if args.device.is_some() { 60.0 } else { 10.0 });
    anyhow::ensure!(
        seconds.is_finite() && seconds > 0.0 && seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    // Before any call: a missing device fails here, listing what exists.
    let local = match &args.device {
        Some(name) => {
            let local = mediabot::adapters::local_participant::sound_device(name.as_deref())?;
            eprintln!(
                "{} will join the first call to connect (one call at a time)",
                local.describe()
            );
            Some(local)
        }
        None => None,
    };
    let calls =
        mediabot::emulator::media_demo::default_calls(std::time::Duration::from_secs_f64(seconds));
    let (tx, printer) = progress_printer();
    let report =
        mediabot::emulator::media_demo::run(&calls, args.record_dir, local, Some(tx)).await?;
    let _ = printer.await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0,
        "--seconds must be in (0, 3600]"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&args.calls),
        "--calls must be in 1..=10000"
    );
    anyhow::ensure!(
        args.warmup.is_finite() && (0.0..=3600.0).contains(&args.warmup),
        "--warmup must be in [0, 3600]"
    );
    let config = mediabot::emulator::load::LoadConfig {
        calls: args.calls,
        hold: std::time::Duration::from_secs_f64(args.seconds),
        bot_url: args.bot,
        emulator_listen: args.emulator_listen,
        record_dir: args.record_dir,
        bot_pid: args.bot_pid,
        bot_metrics: args.bot_metrics,
        bot_wait: std::time::Duration::from_secs(120),
        warmup: std::time::Duration::from_secs_f64(args.warmup),
        emulator_tls: args.emulator_tls_cert.zip(args.emulator_tls_key),
    };
    let (tx, printer) = progress_printer();
    let report = mediabot::emulator::load::run(&config, Some(tx)).await?;
    let _ = printer.await;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

async fn signaling_demo(args: DemoArgs) -> anyhow::Result<()> {
    let calls = mediabot::emulator::demo::default_calls();
    let report =
        mediabot::emulator::demo::run(&calls, std::time::Duration::from_millis(args.hold_ms))
            .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let report: serde_json::Value = match &args.bot {
        None => {
            let pair = mediabot::emulator::demo::start_pair(
                mediabot::adapters::demo_handler::DemoHandlerConfig::default(),
                mediabot::call::CallConfig::default(),
            )
            .await?;
            let report = pair.emulator.replay(pair.bot.webhook_url(), &body).await?;
            pair.bot.shutdown(std::time::Duration::from_secs(1)).await;
            pair.emulator.shutdown().await;
            serde_json::to_value(report)?
        }
        Some(bot) => {
            let base = args.emulator.trim_end_matches('/');
            let cert_path = args.emulator_cert.clone().unwrap_or_else(|| {
                let port = base.rsplit(':').next().unwrap_or("8443");
                std::env::temp_dir().join(format!("mediabot-emulator-{port}.pem"))
            });
            let certs = match std::fs::read(&cert_path) {
                Ok(pem) => CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("parsing {}", cert_path.display()))?,
                Err(_) => Vec::new(),
            };
            let client = mediabot::adapters::tls::https_client(&certs)?;
            let json: serde_json::Value = serde_json::from_slice(&body)
                .with_context(|| format!("{} is not JSON", args.file.display()))?;
            let resp = client
                .post(format!("{base}/emulator/v1/replay"))
                .json(&serde_json::json!({ "botUrl": bot, "body": json }))
                .send()
                .await
                .with_context(|| format!("reaching the emulator at {base}"))?;
            let status = resp.status();
            let v: serde_json::Value = resp.json().await?;
            if !status.is_success() {
                anyhow::bail!("the emulator refused the replay ({status}): {v}");
            }
            v
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let field = |k: &str| report.get(k).cloned().unwrap_or(serde_json::Value::Null);
    println!("call        {}", field("callId"));
    println!(
        "status      {} (the bot's answer to the notification)",
        field("status")
    );
    println!("action      {}", field("action").as_str().unwrap_or("none"));
    println!(
        "deadlineMs  {} (from the {})",
        field("deadlineMs"),
        field("deadlineSource").as_str().unwrap_or("—")
    );
    match field("latencyMs").as_f64() {
        Some(ms) => println!("latencyMs   {ms:.1} (notification sent → decision request received)"),
        None => println!("latencyMs   —"),
    }
    match report.get("request").filter(|r| !r.is_null()) {
        Some(r) => {
            println!(
                "request     {} {} → {}",
                r["method"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or(""),
                r["status"]
            );
            println!("{}", serde_json::to_string_pretty(&r["body"])?);
        }
        None => println!("request     none"),
    }
    Ok(())
}

async fn emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    let mut config = EmulatorConfig {
        listen: args.listen,
        app_id: args.app_id,
        app_secret: args.app_secret,
        accept_invalid_bot_certs: args.accept_invalid_bot_certs,
        public_url: args.public_url,
        ..EmulatorConfig::default()
    };
    if let Some(t) = args.tenant_id {
        config.model.tenant_id = t;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(TlsIdentity::from_pem_files(cert, key)?);
    }
    for path in &args.trust_bot_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing {}", path.display()))?;
        config.trusted_bot_certs.extend(certs);
    }
    let emu = Emulator::start(config).await?;
    let cert_path = args.cert_out.unwrap_or_else(|| {
        let port = emu.base_url().rsplit(':').next().unwrap_or("0").to_owned();
        std::env::temp_dir().join(format!("mediabot-emulator-{port}.pem"))
    });
    std::fs::write(&cert_path, emu.certificate_pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    let app = emu.app();
    println!("mediabot emulator — local Graph calling service");
    println!("  base URL        {}", emu.base_url());
    println!(
        "  Graph API       {}  (and {}/beta)",
        emu.graph_url(),
        emu.base_url()
    );
    println!("  token URL       {}", emu.token_url());
    println!("  OpenID metadata {}", emu.openid_url());
    println!("  app id          {}", app.client_id);
    println!("  app secret      {}", app.client_secret);
    println!("  tenant id       {}", app.tenant_id);
    println!("  certificate     {}", cert_path.display());
    println!("  control API     {}", emu.control_url());
    println!(
        "    ring a bot:    curl --cacert {} -X POST {}/calls -H 'content-type: application/json' \\",
        cert_path.display(),
        emu.control_url()
    );
    println!(
        "                     -d '{{\"botUrl\":\"https://127.0.0.1:9443/api/calling\",\"scenario\":\"p2p\"}}'"
    );
    println!("    read a call:   GET {}/calls/{{id}}", emu.control_url());
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    emu.shutdown().await;
    Ok(())
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
