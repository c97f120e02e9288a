//! The `drehscheibe` command line: argument parsing and dispatch to the
//! subcommands. The hub executable's `main` (`drehscheibe-hub`, and the
//! test suite's copy, see `tests/support/hub_bin.rs`) only calls [`main`];
//! the `drehscheibe` front executable's only calls [`front_main`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::{client::Client, demo, ruletools, runtime};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "drehscheibe",
    version,
    about = "Integration hub (Datendrehscheibe) for OZG applications"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub with a configuration file.
    Serve {
        #[arg(long, short, default_value = "config/drehscheibe.toml")]
        config: PathBuf,
        /// Listen address, overriding `[server] listen` (e.g. `0.0.0.0:8080`
        /// in a container).
        #[arg(long, env = "DREHSCHEIBE_LISTEN")]
        listen: Option<SocketAddr>,
        /// Log format (overrides `[server] log_format`).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Run the hub on the example configuration and rules, with local demo
    /// receivers, and post the example messages.
    Demo {
        #[arg(long, short, default_value = "config/drehscheibe.toml")]
        config: PathBuf,
        /// Address of the demo Fachverfahren HTTP receiver.
        #[arg(long, default_value = "127.0.0.1:9101")]
        receiver: SocketAddr,
        /// Address of the demo SMTP sink.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp: SocketAddr,
        /// Do not post the example messages at start.
        #[arg(long)]
        no_samples: bool,
        /// Sender token used to post the example messages.
        #[arg(long, default_value = "demo-portal-token")]
        token: String,
        /// Channel the example messages are posted to.
        #[arg(long, default_value = "portal")]
        channel: String,
        /// Log format (overrides `[server] log_format`).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Post a file (and attachments) to a running hub.
    Send {
        /// The document to post (XML or JSON; the content type follows the
        /// file extension).
        file: PathBuf,
        /// An attachment to send with the document (repeatable); with
        /// attachments the request is `multipart/form-data`.
        #[arg(long, short = 'a', value_name = "FILE")]
        attach: Vec<PathBuf>,
        /// The intake channel to post to (`/api/v1/inbox/<channel>`).
        #[arg(long, default_value = "portal")]
        channel: String,
        /// Base URL of the hub.
        #[arg(long, env = "DREHSCHEIBE_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Sender token of the channel.
        #[arg(long, env = "DREHSCHEIBE_TOKEN")]
        token: String,
        /// Makes a retry safe: the same key with the same content returns
        /// the first message's id instead of creating a second message.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Inspect and re-drive messages of a running hub.
    Messages {
        /// Base URL of the hub.
        #[arg(
            long,
            env = "DREHSCHEIBE_URL",
            default_value = "http://127.0.0.1:8080",
            global = true
        )]
        url: String,
        /// Operator or tenant token.
        #[arg(long, env = "DREHSCHEIBE_TOKEN", global = true)]
        token: Option<String>,
        #[command(subcommand)]
        action: MessagesAction,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Store tools: apply the PostgreSQL store's schema migrations.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Rule author's tools: run rule tests, publish and list rule packages.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Check XML files against an XML Schema (XSD), as the hub checks
    /// rule inputs and outputs: prints `FILE: valid` or one
    /// `FILE:LINE:COLUMN: message` line per error; exit code 1 if a file
    /// is invalid, 2 if the schema cannot be used.
    Validate {
        /// The schema: an `.xsd` file, or a URI the XML catalog maps to
        /// one (e.g. `urn:xoev-de:xdomea:schema:3.1.0`).
        #[arg(long)]
        schema: String,
        /// The XML catalog that resolves schema URIs and imports offline
        /// (default: `schemas/catalog.xml` if it exists).
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
        /// The documents to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run one stylesheet on one input file and write the result to stdout.
    Transform(TransformArgs),
}

/// The arguments of `transform`, shared by the hub's command line and the
/// front's ([`FrontCli`]).
#[derive(clap::Args)]
struct TransformArgs {
    /// The XSLT stylesheet.
    #[arg(long)]
    stylesheet: PathBuf,
    /// The input document; `.json` files are offered to the stylesheet
    /// in their `json-to-xml` form.
    #[arg(long)]
    input: PathBuf,
    /// Content type of the input (default: by extension, `.json` →
    /// application/json, else application/xml).
    #[arg(long)]
    content_type: Option<String>,
    /// A global stylesheet parameter, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = ruletools::parse_param)]
    params: Vec<(String, String)>,
}

impl TransformArgs {
    fn run(self) -> ExitCode {
        ruletools::transform(
            &self.stylesheet,
            &self.input,
            self.content_type.as_deref(),
            self.params,
        )
    }
}

/// The front's command line: only `transform` (everything else was
/// handed to the hub before parsing, `--version` included). Same name and
/// texts as [`Cli`], so
/// `drehscheibe transform --help` and its errors read the same from
/// either executable; building the one subcommand instead of all of them
/// is a twentieth of a small transform's start-up.
#[derive(Parser)]
#[command(
    name = "drehscheibe",
    about = "Integration hub (Datendrehscheibe) for OZG applications"
)]
struct FrontCli {
    #[command(subcommand)]
    command: FrontCommand,
}

#[derive(Subcommand)]
enum FrontCommand {
    /// Run one stylesheet on one input file and write the result to stdout.
    Transform(TransformArgs),
}

#[derive(Subcommand)]
enum RulesAction {
    /// Run the test cases of a depot, a package, its tests folder or one
    /// case; ends with `N passed, M failed`.
    Test {
        /// Depot, package folder, package `tests/` folder or case folder.
        #[arg(default_value = "rules")]
        path: PathBuf,
        /// Also write a JUnit XML report to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// The XML catalog for the schemas packages declare (default:
        /// `schemas/catalog.xml` if it exists).
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
    },
    /// Validate a package (manifest, XPath, stylesheets, its tests) and
    /// copy it into the depot as `<id>/<version>`; existing versions are
    /// never overwritten.
    Publish {
        /// The package folder (holding `rule.toml`).
        package: PathBuf,
        /// The rule depot.
        #[arg(long, default_value = "rules")]
        depot: PathBuf,
        /// The XML catalog (default: `schemas/catalog.xml` if it exists).
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
    },
    /// List the rules of a depot: id, versions, title.
    List {
        /// The rule depot.
        #[arg(long, default_value = "rules")]
        depot: PathBuf,
        /// The XML catalog (default: `schemas/catalog.xml` if it exists).
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum MessagesAction {
    /// List messages, oldest first, one page at a time (filters:
    /// --tenant, --state, --since; next page: --after).
    List {
        /// Only messages of this tenant (a tenant token always sees only
        /// its own).
        #[arg(long)]
        tenant: Option<String>,
        /// Only messages in this state: received, routed, delivering,
        /// delivered, failed, dead or rejected.
        #[arg(long)]
        state: Option<String>,
        /// Only messages received at or after this RFC 3339 timestamp.
        #[arg(long)]
        since: Option<String>,
        /// Continue after this message id (the `--after ID` a previous page
        /// printed).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// Page size (at most 500).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show a message with its deliveries and audit trail.
    Show { id: String },
    /// Re-queue a dead, delivered or rejected message.
    Replay {
        id: String,
        /// Replay even though the sender was already given a final answer
        /// (e.g. a FIT-Connect reject-submission) that the replay
        /// contradicts; the audit trail records it.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Apply the pending schema migrations of the configured `[store]`
    /// (PostgreSQL) and list what was applied; the hub also applies them
    /// at start, so this is for operators who migrate before a rollout.
    Migrate {
        /// The hub configuration naming the store.
        #[arg(long, default_value = "config/drehscheibe.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate a configuration (and its rule references) and summarise it.
    Check { file: PathBuf },
    /// List the channel and connector types this hub offers (the
    /// registered protocol plugins), with a line on each.
    Types,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sled=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn log_format(cli: Option<LogFormat>, config: &Path) -> LogFormat {
    cli.unwrap_or_else(|| {
        match drehscheibe_config::HubConfig::load(config, &crate::connectors::plugins()) {
            Ok(c) if c.server.log_format == drehscheibe_config::LogFormat::Json => LogFormat::Json,
            _ => LogFormat::Text,
        }
    })
}

/// The `drehscheibe` executable (see [`crate::front`]): `transform` runs
/// here, in a process that does not carry the hub; any other command —
/// and `--help`, `--version` — is handed to the hub executable.
pub fn front_main() -> ExitCode {
    if std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new("transform")) {
        return crate::front::exec_hub();
    }
    let FrontCommand::Transform(args) = FrontCli::parse().command;
    args.run()
}

/// The hub executable's `main`: parse the process arguments and run the
/// chosen subcommand (all of them, `transform` included).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The rule tools are synchronous one-shots: no async runtime (its
    // worker threads cost start-up time that `drehscheibe transform`,
    // called once per document by scripts, should not pay).
    let cli = match cli.command {
        Command::Transform(args) => return args.run(),
        Command::Validate {
            schema,
            catalog,
            files,
        } => return ruletools::validate(&schema, catalog.as_deref(), &files),
        command => Cli { command },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            log_format: format,
        } => {
            init_tracing(log_format(format, &config));
            let rt = runtime::start_with(&config, listen).await?;
            rt.run_until_signal().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            config,
            receiver,
            smtp,
            no_samples,
            token,
            channel,
            log_format: format,
        } => {
            init_tracing(log_format(format, &config));
            run_demo(&config, receiver, smtp, no_samples, &token, &channel).await
        }
        Command::Send {
            file,
            attach,
            channel,
            url,
            token,
            idempotency_key,
        } => {
            let client = Client::new(&url, &token)?;
            let r = client
                .send(&channel, &file, &attach, idempotency_key.as_deref())
                .await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Messages { url, token, action } => {
            let token = token.context("a token is needed: --token or DREHSCHEIBE_TOKEN")?;
            let client = Client::new(&url, &token)?;
            let out = match action {
                MessagesAction::List {
                    tenant,
                    state,
                    since,
                    after,
                    limit,
                } => {
                    let mut q = vec![format!("limit={limit}")];
                    if let Some(t) = tenant {
                        q.push(format!("tenant={t}"));
                    }
                    if let Some(s) = state {
                        q.push(format!("state={s}"));
                    }
                    if let Some(s) = since {
                        q.push(format!("since={}", s.replace('+', "%2B")));
                    }
                    if let Some(a) = after {
                        q.push(format!("after={a}"));
                    }
                    let page = client
                        .get(&format!("/api/v1/messages?{}", q.join("&")))
                        .await?;
                    print_list(&page);
                    return Ok(ExitCode::SUCCESS);
                }
                MessagesAction::Show { id } => {
                    client.get(&format!("/api/v1/messages/{id}")).await?
                }
                MessagesAction::Replay { id, force } => {
                    let q = if force { "?force=true" } else { "" };
                    client
                        .post(&format!("/api/v1/messages/{id}/replay{q}"))
                        .await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            action: StoreAction::Migrate { config },
        } => {
            let (config, _, _) = runtime::load(&config)?;
            let applied = runtime::migrate(&config).await?;
            if applied.is_empty() {
                println!("store schema is current; nothing to apply");
            } else {
                for v in applied {
                    println!("applied migration {v}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            action: ConfigAction::Types,
        } => {
            let plugins = crate::connectors::plugins();
            println!("channel types ([channels.<id>] type = …):");
            for p in plugins.channel_types() {
                println!("  {:<24} {}", p.kind, p.summary);
            }
            println!("connector types ([connectors.<id>] type = …):");
            for p in plugins.connector_types() {
                println!("  {:<24} {}", p.kind, p.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            action: ConfigAction::Check { file },
        } => match runtime::load(&file) {
            Ok((config, depot, problems)) => {
                println!("{}: OK (digest {})", file.display(), config.digest);
                println!(
                    "  channels: {}",
                    config
                        .channels
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for t in &config.tenants {
                    println!(
                        "  tenant {} ({}): {} connectors, {} routes",
                        t.id,
                        t.name,
                        t.connectors.len(),
                        t.routes.len()
                    );
                }
                println!("  rule depot: {} package versions", depot.packages().len());
                for p in &problems {
                    println!("  warning: rule package not loadable: {p}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e:#}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Rules { action } => Ok(match action {
            RulesAction::Test {
                path,
                junit,
                catalog,
            } => ruletools::test(&path, junit.as_deref(), catalog.as_deref()),
            RulesAction::Publish {
                package,
                depot,
                catalog,
            } => ruletools::publish(&package, &depot, catalog.as_deref()),
            RulesAction::List { depot, catalog } => ruletools::list(&depot, catalog.as_deref()),
        }),
        Command::Validate {
            schema,
            catalog,
            files,
        } => Ok(ruletools::validate(&schema, catalog.as_deref(), &files)),
        Command::Transform(args) => Ok(args.run()),
    }
}

fn print_list(page: &serde_json::Value) {
    let empty = Vec::new();
    let items = page
        .get("items")
        .and_then(|i| i.as_array())
        .unwrap_or(&empty);
    println!(
        "{:<36}  {:<10}  {:<12}  {:<14}  received_at",
        "id", "state", "tenant", "leistung"
    );
    for m in items {
        let s = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
        println!(
            "{:<36}  {:<10}  {:<12}  {:<14}  {}",
            s("id"),
            s("state"),
            s("tenant"),
            s("leistung"),
            s("received_at")
        );
    }
    if let Some(n) = page.get("next").and_then(|v| v.as_str()) {
        println!("(more: --after {n})");
    }
}

async fn run_demo(
    config: &Path,
    receiver: SocketAddr,
    smtp: SocketAddr,
    no_samples: bool,
    token: &str,
    channel: &str,
) -> Result<ExitCode> {
    let stop = CancellationToken::new();
    let (cfg, _, _) = runtime::load(config)?;
    let out = cfg.server.data_dir.join("demo-receiver");
    let r = demo::http_receiver(receiver, &out, stop.clone()).await?;
    let m = demo::smtp_sink(smtp, &out, stop.clone()).await?;
    let rt = runtime::start(config).await?;
    let base = format!("http://{}", rt.addr);
    println!();
    println!("Drehscheibe demo is running.");
    println!(
        "  hub:                 {base}  (data in {})",
        cfg.server.data_dir.display()
    );
    println!(
        "  demo Fachverfahren:  http://{r}/…  (stores into {})",
        out.display()
    );
    println!("  demo mailbox (SMTP): {m}");
    println!("  console:             {base}/console  (sign in with demo-operator-token, or demo-musterstadt-token for one Kommune's view)");
    if !no_samples {
        let dir = config.parent().unwrap_or(Path::new(".")).join("demo");
        let client = Client::new(&base, token)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        let is_sample = |f: &&PathBuf| {
            f.is_file()
                && matches!(
                    f.extension().and_then(|e| e.to_str()),
                    Some("xml") | Some("json")
                )
        };
        for f in files.iter().filter(is_sample) {
            // A stable key per sample (name and content): a restart of the
            // demo finds the message of the previous start instead of
            // posting a duplicate; an edited sample is a new message.
            let key = match std::fs::read(f) {
                Ok(bytes) => demo::sample_key(f, &bytes),
                Err(e) => {
                    println!("  ✘ {}: {e}", f.display());
                    continue;
                }
            };
            match client.send(channel, f, &[], Some(&key)).await {
                Ok(v) => println!(
                    "  → {} {} as message {}",
                    if v.get("duplicate").and_then(|d| d.as_bool()) == Some(true) {
                        "already posted"
                    } else {
                        "posted"
                    },
                    f.display(),
                    v.get("id").and_then(|i| i.as_str()).unwrap_or("?")
                ),
                Err(e) => println!("  ✘ {}: {e:#}", f.display()),
            }
        }
    }
    let bin = demo::invocation_name();
    println!();
    println!("Try next (in another terminal):");
    println!("  {bin} send --token {token} config/demo/<file>");
    println!("  {bin} messages --token demo-operator-token list");
    println!("  {bin} messages --token demo-operator-token show <id>");
    println!("  curl -s {base}/metrics | grep drehscheibe_");
    println!("Stop with Ctrl-C.");
    println!();
    let result = rt.run_until_signal().await;
    stop.cancel();
    result?;
    Ok(ExitCode::SUCCESS)
}
