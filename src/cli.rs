//! The `roleledger` command line. Errors end as one line on stderr and a non-zero exit code.

mod audit;

use std::{fmt::Display, path::PathBuf, process::ExitCode, sync::Arc};

use chrono::Utc;
use clap::{CommandFactory, Parser, Subcommand};

use crate::{
    app::{simulate, App, AppError, Origin},
    auth::{JwtVerifier, LoginClaims},
    configuration::{JwtKeys, Options, Settings},
    domain::{Command as DomainCommand, DomainError, ScopeId, Subject, UserId},
    startup::Application,
    store::{EventSelection, EventStore, ExportFormat, Migrations, Moment},
    telemetry,
    workflow::{built_in, Duration, Summary, Workflow, WorkflowSource, ADMIN, BUILT_IN},
};

#[derive(Debug, Parser)]
#[command(name = "roleledger", version, about = "Event-sourced role-request workflow server")]
struct Cli {
    /// Configuration file (TOML, keys named like the flags); variables and flags override it.
    #[arg(long, global = true, env = "ROLELEDGER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    options: Options,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve {
        /// Only validate the workflow file and print what it says; opens no database.
        #[arg(long)]
        check: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check the hash chain, stream versions and projections; exit 1 naming the first bad position.
    Verify,
    /// Print the grants as they stood at a moment (now when not given), from the grants' history.
    Replay {
        /// A log position (that event included) or an RFC 3339 time.
        #[arg(long, value_name = "TIME|POSITION")]
        until: Option<Moment>,
    },
    /// Rebuild every projection from the log and say what they hold (progress on stderr).
    Rebuild,
    /// Write the log (or part of it) to stdout, as it is read.
    Export {
        #[arg(long, value_enum, default_value = "ndjson")]
        format: ExportFormatArg,
        /// The first event: a position or an RFC 3339 time (inclusive).
        #[arg(long, value_name = "POSITION|TIME")]
        from: Option<Moment>,
        /// The last event: a position or an RFC 3339 time (inclusive).
        #[arg(long, value_name = "POSITION|TIME")]
        until: Option<Moment>,
    },
    /// Read an NDJSON export (FILE, or - for stdin) into an empty store, checking every hash.
    Import {
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Print a login token (JWT) signed with the configured secret, and nothing else.
    Token {
        #[arg(long, value_name = "ID")]
        user: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// How long the token is valid (ISO 8601 or short, e.g. 12h) [default: 12h].
        #[arg(long, value_name = "DURATION", default_value = "12h")]
        ttl: Duration,
        /// Roles the token carries (`manager@P1`, `support`); honoured only where token-grantable.
        #[arg(long = "role", value_name = "ROLE@SCOPE")]
        roles: Vec<String>,
    },
    /// Grant `admin` to USER (registering them when new): an event whose actor is the command line.
    BootstrapAdmin {
        #[arg(value_name = "USER")]
        user: String,
    },
    /// May USER do PERMISSION on SCOPE? Exit 0 allowed, 1 denied, 2 error.
    Check { user: String, permission: String, scope: String },
    /// The built-in workflows.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Print shell completions for SHELL to stdout.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout.
    Man,
    /// Judge the recorded history under a candidate workflow against the configured one; writes
    /// nothing. Exit 0 no differences, 1 differences, 2 error.
    Simulate {
        /// The candidate workflow: a file, or a built-in workflow's name (as for --workflow).
        #[arg(long, value_name = "FILE|NAME")]
        candidate: PathBuf,
        /// Judge the log up to a log position (that event included) or an RFC 3339 time.
        #[arg(long, value_name = "TIME|POSITION")]
        until: Option<Moment>,
        #[arg(long, value_enum, default_value = "table")]
        format: SimulateFormat,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowCommand {
    /// Print a built-in workflow's TOML (to copy and edit).
    Show {
        #[arg(value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(BUILT_IN.map(|(name, _)| name)))]
        name: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormatArg {
    Ndjson,
    Csv,
}

impl From<ExportFormatArg> for ExportFormat {
    fn from(format: ExportFormatArg) -> Self {
        match format {
            ExportFormatArg::Ndjson => ExportFormat::Ndjson,
            ExportFormatArg::Csv => ExportFormat::Csv,
        }
    }
}

/// How `simulate` prints its differences: tab-separated with a header, or one JSON object a line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SimulateFormat {
    Table,
    Ndjson,
}

/// Exit codes: 0 success, 1 the answer is "no" (verify found a problem, check denied), 2 an error.
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
    // What needs no configuration runs without reading any (a broken file does not stop `man`).
    match cli.command {
        Command::Workflow(WorkflowCommand::Show { name }) => {
            print!("{}", built_in(&name).ok_or_else(|| format!("no built-in workflow {name}"))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "roleledger", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|error| format!("cannot write the manual page: {error}"))?;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let settings = Settings::load(cli.config.as_deref(), cli.options).map_err(|e| e.to_string())?;
            execute_configured(settings, command).await
        }
    }
}

async fn execute_configured(settings: Settings, command: Command) -> Result<ExitCode, String> {
    let open = |migrations| open_store(&settings, migrations);
    match command {
        Command::Serve { check: true } => {
            let workflow = Workflow::load(&settings.workflow).map_err(|e| e.to_string())?;
            print!("{}", Summary(&workflow));
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { check: false } => {
            let app = Application::build(&settings).await.map_err(|e| e.to_string())?;
            tracing::info!(port = app.port(), database = %settings.database, "roleledger is listening");
            if let JwtKeys::Development(file) = &settings.jwt.keys {
                tracing::info!(
                    secret = %file.display(),
                    "development mode: no JWT key is configured, so logins use a generated secret kept in this file. \
                     Get a token with `roleledger token --user alice` in this directory, make someone an administrator \
                     with `roleledger bootstrap-admin alice`, then call the API with `Authorization: Bearer TOKEN`"
                );
            }
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
            // The chain first; then, where a workflow is at hand, the projections, folded by a
            // store opened with it (a broken chain is never folded).
            let mut report = open(Migrations::RequireCurrent).await?.verify().await.map_err(|e| e.to_string())?;
            let missing_file =
                matches!(WorkflowSource::of(&settings.workflow), WorkflowSource::File(path) if !path.exists());
            let with_workflow = report.ok && !missing_file;
            if with_workflow {
                let app = open_app(&settings, Migrations::RequireCurrent).await?;
                report = app.verify().await.map_err(|e| e.to_string())?;
            }
            match report.first_problem {
                None => {
                    let projections = match report.projections_checked_at {
                        Some(position) => format!("projections match a rebuild at position {position}"),
                        None => format!("projections not checked: no workflow file at {}", settings.workflow.display()),
                    };
                    println!("ok: {} events, head {}; {projections}", report.events, report.head.hash);
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!("FAILED at position {}: {}", problem.position, problem.problem);
                    Ok(ExitCode::from(EXIT_NO))
                }
            }
        }
        Command::Workflow(_) | Command::Completions { .. } | Command::Man => {
            unreachable!("run before reading settings")
        }
        Command::Replay { until } => {
            audit::replay(&open_app(&settings, Migrations::RequireCurrent).await?, until).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild => {
            let workflow = load_workflow(&settings)?;
            audit::rebuild(&open(Migrations::RequireCurrent).await?, workflow).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { format, from, until } => {
            let selection = EventSelection { from, until, ..EventSelection::default() };
            audit::export(&open(Migrations::RequireCurrent).await?, format.into(), selection).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { file } => {
            audit::import(&open(Migrations::Apply).await?, &file).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { user, email, name, ttl, roles } => {
            // A token for an id the server would refuse is refused here, with the same words.
            UserId::parse(&user).map_err(|bad| bad.to_string())?;
            let verifier = JwtVerifier::from_settings(&settings.jwt).map_err(|e| e.to_string())?;
            let claims = LoginClaims {
                sub: user,
                exp: crate::domain::time::end_after(Utc::now(), ttl)
                    .ok_or_else(|| format!("invalid duration: a --ttl of {ttl} is longer than 100 years"))?
                    .timestamp(),
                email,
                name,
                roles: (!roles.is_empty()).then_some(roles),
            };
            println!("{}", verifier.sign(&claims).map_err(|e| e.to_string())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::BootstrapAdmin { user } => {
            bootstrap_admin(&open_app(&settings, Migrations::Apply).await?, &user).await?;
            println!("{user} is an administrator");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { user, permission, scope } => {
            let app = open_app(&settings, Migrations::RequireCurrent).await?;
            let result = app.read_model(|model| model.state().check(&user, &permission, &scope, Utc::now()));
            if result.allowed {
                let via: Vec<String> = result.via.iter().map(|id| id.to_string()).collect();
                println!("allowed (via grant {})", via.join(", "));
                Ok(ExitCode::SUCCESS)
            } else {
                println!("denied");
                Ok(ExitCode::from(EXIT_NO))
            }
        }
        Command::Simulate { candidate, until, format } => {
            // The candidate first: a broken one is told (FILE:LINE) before any database is opened.
            let candidate = Workflow::load(&candidate).map_err(|e| e.to_string())?;
            let current = load_workflow(&settings)?;
            let store = open(Migrations::RequireCurrent).await?;
            let simulated = simulate::simulate(&store, &current, &candidate, until).await.map_err(|e| e.to_string())?;
            audit::print_simulated(&simulated, matches!(format, SimulateFormat::Ndjson))?;
            Ok(if simulated.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_NO) })
        }
    }
}

fn load_workflow(settings: &Settings) -> Result<Arc<Workflow>, String> {
    Workflow::load(&settings.workflow).map(Arc::new).map_err(|e| e.to_string())
}

/// The log alone: what the chain, export, import and migrations need.
async fn open_store(settings: &Settings, migrations: Migrations) -> Result<EventStore, String> {
    let database = &settings.database;
    EventStore::open(database, migrations)
        .await
        .map_err(|error| format!("cannot open the database {database}: {error}"))
}

/// The log folded under the workflow: what commands and questions about the state need.
async fn open_app(settings: &Settings, migrations: Migrations) -> Result<App, String> {
    let workflow = load_workflow(settings)?;
    let database = &settings.database;
    // A key that was never made sealed no snapshot: nothing to read then.
    let snapshot_key = match settings.snapshots.every {
        0 => None,
        _ => settings.snapshots.key.load(false).map_err(|error| error.to_string())?,
    };
    App::open_with_snapshots(database, None, migrations, workflow, snapshot_key)
        .await
        .map_err(|error| format!("cannot open the database {database}: {error}"))
}

/// Registers the user if new, then grants `admin` on `global` unless already held.
pub async fn bootstrap_admin(app: &App, user: &str) -> Result<(), String> {
    let user = UserId::parse(user).map_err(|bad| bad.to_string())?;
    let commands = [
        DomainCommand::RegisterUser { user: user.clone(), email: None, name: None },
        DomainCommand::AssignRole {
            subject: Subject::User(user),
            role: ADMIN.to_string(),
            scope: ScopeId::global(),
            reason: "roleledger bootstrap-admin".to_string(),
            duration: None,
            starts_at: None,
        },
    ];
    for command in commands {
        match app.execute(Origin::CommandLine, command).await {
            Ok(_) => {}
            // Already an administrator: nothing to do.
            Err(AppError::Rejected(DomainError::DuplicateRequest { .. })) => {}
            Err(error) => return Err(error.to_string()),
        }
    }
    Ok(())
}
