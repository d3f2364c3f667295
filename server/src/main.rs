//! `mayday-server`: serve, and the few administrative commands.

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use mayday_server::index::{Index, Role};
use mayday_server::lifecycle::Emptying;
use mayday_server::{App, Config};

mod cli {
    pub mod issues;
    pub mod signatures;
}

/// What `serve --help` adds: where settings and logs come from (`--help`
/// adds the list of every setting, [`mayday_server::config::settings_help`]).
const SERVE_HELP: &str = "\
Settings: built-in defaults (SQLite and files under ./mayday-data, port 8080),
then the --config TOML file, then MAYDAY_* environment variables: the file's
key `key` of `[section]` is MAYDAY_SECTION__KEY (MAYDAY_LIMITS__MAX_PARTS=32,
MAYDAY_PIPELINE__JOB_LEASE=10m), a top-level `key` is MAYDAY_KEY (e.g.
MAYDAY_LISTEN=127.0.0.1:8080, MAYDAY_DATA_DIR, MAYDAY_DATABASE_URL); a few
named ones such as MAYDAY_WORKERS apply last. `serve --help` lists them all.

Logs: on stderr, as text on a terminal and JSON lines otherwise
(MAYDAY_LOG_FORMAT=json|text chooses); MAYDAY_LOG sets the filter (default
info), e.g. MAYDAY_LOG=debug or MAYDAY_LOG=mayday_server=debug,info.

First token: mayday-server token create --role admin";

/// The Mayday crash report server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML config file; `MAYDAY_*` environment variables override it.
    #[arg(long, global = true, env = "MAYDAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest, processing workers, API.
    #[command(after_help = SERVE_HELP)]
    Serve,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Triage from a terminal over a running server's API.
    Issues {
        #[command(flatten)]
        remote: cli::issues::Remote,
        // Boxed: the search filters make it much larger than the other commands.
        #[command(subcommand)]
        command: Box<cli::issues::IssuesCommand>,
    },
    /// Manage the master key that wraps the reports' data keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Delete reports directly in the store and index (audited as `cli`).
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Crash signatures: regroup stored reports after a signature rule change.
    Signatures {
        #[command(subcommand)]
        command: cli::signatures::SignaturesCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random master key (64 hex digits), to configure or rotate to.
    Generate,
    /// Rewrap every report's data key under a new master key. With the key in
    /// `<data_dir>/master.key` the file is replaced; with a configured key the new
    /// one is printed, to be configured before the next start. Resumable.
    Rotate {
        /// The new master key (64 hex digits); required when the current one is
        /// configured, generated when it is kept in the data dir.
        #[arg(long, env = "MAYDAY_NEW_MASTER_KEY", hide_env_values = true)]
        new_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Delete reports by CrashID, or every report of an issue.
    Delete {
        /// CrashIDs (`bp-…`).
        ids: Vec<String>,
        /// Delete every report of this issue (the issue stays).
        #[arg(long)]
        issue: Option<i64>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it as one line (it is stored hashed: save it).
    Create {
        /// admin, developer, support or uploader.
        #[arg(long)]
        role: Role,
        /// A name for people.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id.
    Revoke {
        /// The token id (`tok_…`).
        id: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `serve --help` lists every setting, from the configuration type itself.
    let settings = format!("{SERVE_HELP}\n\n{}", mayday_server::config::settings_help());
    let matches = Cli::command()
        .mut_subcommand("serve", |serve| serve.after_long_help(settings))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let config = Config::load(cli.config.as_deref()).context("while loading the configuration")?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Token { command } => token(config, command).await,
        Command::Issues { remote, command } => cli::issues::run(remote, *command).await,
        Command::Keys { command } => keys(config, command).await,
        Command::Reports { command } => reports(config, command).await,
        Command::Signatures { command } => cli::signatures::run(config, command).await,
    }
}

/// Logs on stderr: text on a terminal, JSON lines otherwise or when
/// `MAYDAY_LOG_FORMAT=json` (`text` forces text); `MAYDAY_LOG` filters.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MAYDAY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("MAYDAY_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging();
    let listen = config.listen;
    // The address first: a start that cannot listen creates nothing (no data
    // dir, no master key).
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("while binding {listen}"))?;
    let data_dir = config.data_dir.clone();
    let app = App::build(config)
        .await
        .context("while starting (signature rules, storage, index)")?;
    let address = listener.local_addr()?;
    tracing::info!(address = %address, "listening");
    eprintln!(
        "Mayday is listening on http://{address} (data in {}).\n\
         Crash reports go to /submit there, the triage UI is at /.\n\
         Create the first token with: mayday-server token create --role admin",
        data_dir.display()
    );
    app.serve(listener, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn token(config: Config, command: TokenCommand) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).context("while creating the data directory")?;
    let index = Index::connect(&config.database_url())
        .await
        .context("while opening the index")?;
    match command {
        TokenCommand::Create { role, name } => {
            let (_id, secret) =
                mayday_server::triage::auth::create_token(&index, role, &name).await?;
            println!("{secret}");
        }
        TokenCommand::List => {
            println!("ID\tROLE\tSTATE\tNAME");
            for token in index.list_tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    token.id,
                    token.role.as_str(),
                    if token.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    token.name
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let revoked = index
                .revoke_token(&id, mayday_server::index::now_ms())
                .await?;
            anyhow::ensure!(revoked, "no active token {id}");
            println!("revoked {id}");
        }
    }
    index.close().await;
    Ok(())
}

async fn keys(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    let new_key = match command {
        KeysCommand::Generate => {
            println!("{}", mayday_server::crypto::MasterKey::generate().to_hex());
            return Ok(());
        }
        KeysCommand::Rotate { new_key } => new_key,
    };
    let new_key = new_key
        .map(|k| mayday_server::crypto::MasterKey::from_hex(&k))
        .transpose()
        .context("while reading the new master key")?;
    std::fs::create_dir_all(&config.data_dir).context("while creating the data directory")?;
    let index = Index::connect(&config.database_url())
        .await
        .context("while opening the index")?;
    let rotation = mayday_server::vault::rotate(&config, &index, new_key)
        .await
        .context("while rotating the master key (run it again to resume)")?;
    index
        .audit(
            "cli",
            "keys.rotate",
            "master_key",
            Some(&format!(
                "rewrapped={} stack_keys_rewrapped={}",
                rotation.rewrapped, rotation.stack_keys_rewrapped
            )),
        )
        .await?;
    index.close().await;
    println!(
        "rewrapped {} data keys, {} stack keys",
        rotation.rewrapped, rotation.stack_keys_rewrapped
    );
    if let Some(key) = rotation.new_key_to_configure {
        println!(
            "new master key (set it as master_key / MAYDAY_MASTER_KEY before the next start):"
        );
        println!("{}", key.to_hex());
    }
    Ok(())
}

async fn reports(config: Config, command: ReportsCommand) -> anyhow::Result<()> {
    let ReportsCommand::Delete { ids, issue } = command;
    anyhow::ensure!(
        !ids.is_empty() || issue.is_some(),
        "name CrashIDs or --issue <id>"
    );
    let app = App::build(config)
        .await
        .context("while starting (signature rules, storage, index)")?;
    let state = &app.state;
    for id in &ids {
        // Text that is no report id names no stored report.
        let deleted = match id.parse::<mayday_server::report_id::ReportId>() {
            Ok(id) => {
                mayday_server::deletion::delete_report_by_id(
                    state.vault(),
                    state.metrics(),
                    &id,
                    "cli",
                    "command line",
                )
                .await?
            }
            Err(_) => false,
        };
        println!("{id}\t{}", if deleted { "deleted" } else { "not stored" });
    }
    if let Some(issue) = issue {
        let deleted = mayday_server::lifecycle::empty_issue(
            state.vault(),
            state.metrics(),
            issue,
            "cli",
            Emptying::KeepIssue,
        )
        .await?;
        println!("issue {issue}\t{deleted} reports deleted");
    }
    state.index().checkpoint().await?;
    state.index().close().await;
    Ok(())
}
