//! A PostgreSQL cluster of the test's own (initdb into a temporary folder, its own port), so that
//! stopping it hurts nobody else on the machine. PostgreSQL refuses to run as root, so as root its
//! programs run as the `postgres` user.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::harness::{free_port, running_as_root};

pub struct PrivatePostgres {
    folder: tempfile::TempDir,
    port: u16,
}

/// Where Debian puts the server programs (`pg_ctl` and `initdb` are not on PATH there).
fn program(name: &str) -> PathBuf {
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(debian)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).filter(|p| p.exists()).collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| PathBuf::from(name))
}

impl PrivatePostgres {
    /// initdb and start; panics (the scenario fails) when PostgreSQL's programs are missing.
    pub fn start() -> PrivatePostgres {
        let folder = tempfile::tempdir().expect("a temporary folder");
        if running_as_root() {
            run(
                Command::new("chown").args(["-R", "postgres:", &folder.path().display().to_string()]),
                "chown the cluster's folder",
            );
        }
        let cluster = PrivatePostgres { port: free_port(), folder };
        cluster.postgres_command(
            &program("initdb"),
            &["-D", &cluster.data(), "-A", "trust", "-U", "postgres", "--no-sync"],
            "initdb",
        );
        cluster.start_again();
        cluster
    }

    fn data(&self) -> String {
        self.folder.path().join("data").display().to_string()
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn start_again(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.folder.path().display());
        let log = self.folder.path().join("postgres.log").display().to_string();
        self.postgres_command(
            &program("pg_ctl"),
            &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "start"],
            "pg_ctl start",
        );
    }

    /// `pg_ctl stop -m immediate`: every connection dropped at once, no checkpoint, crash
    /// recovery at the next start — the database vanishing as abruptly as it can.
    pub fn stop(&self) {
        self.postgres_command(
            &program("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            "pg_ctl stop",
        );
    }

    fn postgres_command(&self, program: &Path, args: &[&str], what: &str) {
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        run(command.args(args).current_dir(self.folder.path()), what);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let pid_file = self.folder.path().join("data/postmaster.pid");
        if pid_file.exists() {
            self.stop();
        }
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|error| panic!("{what}: cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
