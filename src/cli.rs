//! The `roleledger` command line. Errors end as one line on stderr and a non-zero exit code.

use std::{fmt::Display, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    configuration::{Overrides, Settings},
    startup::Application,
    store::{EventStore, Migrations},
    telemetry,
};

#[derive(Debug, Parser)]
#[command(name = "roleledger", version, about = "Event-sourced role-request workflow server")]
struct Cli {
    /// Configuration file (TOML, keys named like the flags); variables and flags override it.
    #[arg(long, global = true, env = "ROLELEDGER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// sqlite:PATH (default sqlite:roleledger.db) or postgres://USER@HOST[:PORT]/DB.
    #[arg(long, global = true, env = "ROLELEDGER_DATABASE", value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "ROLELEDGER_BIND", value_name = "ADDR")]
        bind: Option<String>,
        /// The workflow file [default: workflows/egi.toml].
        #[arg(long, env = "ROLELEDGER_WORKFLOW", value_name = "FILE")]
        workflow: Option<PathBuf>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check the hash chain and stream versions; exit 1 naming the first bad position.
    Verify,
}

/// Exit codes: 0 success, 1 the answer is "no" (verify found a problem), 2 an error.
const EXIT_NO: u8 = 1;
const EXIT_ERROR: u8 = 2;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(execute(cli)).unwrap_or_else(fail)
}

fn fail(error: impl Display) -> ExitCode {
    // One line, whatever the error's text holds.
    eprintln!("error: {}", error.to_string().replace('\n', " "));
    ExitCode::from(EXIT_ERROR)
}

async fn execute(cli: Cli) -> Result<ExitCode, String> {
    let (bind, workflow) = match &cli.command {
        Command::Serve { bind, workflow } => (bind.clone(), workflow.clone()),
        _ => (None, None),
    };
    let overrides = Overrides { bind, database: cli.database.clone(), workflow };
    let settings = Settings::load(cli.config.as_deref(), overrides).map_err(|e| e.to_string())?;
    let database = settings.database.clone();
    let open = |migrations| async move {
        EventStore::open(&database, migrations)
            .await
            .map_err(|error| format!("cannot open the database {database}: {error}"))
    };
    match cli.command {
        Command::Serve { .. } => {
            let app = Application::build(&settings).await.map_err(|e| e.to_string())?;
            tracing::info!(port = app.port(), database = %settings.database, "roleledger is listening");
            app.run_until_stopped().await.map_err(|e| format!("server stopped: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let store = open(Migrations::Apply).await?;
            let head = store.head().await.map_err(|e| e.to_string())?;
            println!("migrated {} ({} events)", settings.database, head.position);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => {
            let store = open(Migrations::RequireCurrent).await?;
            let report = store.verify().await.map_err(|e| e.to_string())?;
            match report.first_problem {
                None => {
                    println!("ok: {} events, head {}", report.events, report.head.hash);
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!("FAILED at position {}: {}", problem.position, problem.problem);
                    Ok(ExitCode::from(EXIT_NO))
                }
            }
        }
    }
}
