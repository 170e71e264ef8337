use tracing_subscriber::{fmt, EnvFilter};

/// Logs go to stderr (stdout stays clean for commands whose output is data, like `token`).
/// `RUST_LOG` overrides the default level.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A second call (tests spawning several apps) keeps the first subscriber.
    let _ = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}
