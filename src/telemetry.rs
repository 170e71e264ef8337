use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

/// Logs go to stderr (stdout stays clean for commands whose output is data, like `token`).
/// `RUST_LOG` overrides the default level.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A second call (tests spawning several apps) keeps the first subscriber.
    let _ =
        fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours()).with_target(false).try_init();
}

/// Colours only for a person at a terminal: never into a file, a pipe or a journal, and not when
/// `NO_COLOR` is set to anything (https://no-color.org).
fn colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    std::io::stderr().is_terminal() && !no_color
}
