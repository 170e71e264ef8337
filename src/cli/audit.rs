//! The auditors' commands: `replay`, `rebuild`, `export`, `import`, the progress display of
//! `rebuild`, and the printing of `simulate`'s differences.

use std::{
    cell::Cell,
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;

use crate::{
    app::{simulate::Simulated, App},
    domain::{GrantStatus, Subject},
    projections::DomainModel,
    store::{EventSelection, EventStore, ExportFormat, ImportError, Moment, RecordedEvent},
    workflow::Workflow,
};

/// Prints the grants as they stood at `until` (now when not given), one a line, sorted.
pub async fn replay(app: &App, until: Option<Moment>) -> Result<(), String> {
    let moment = until.unwrap_or(Moment::Time(Utc::now()));
    let past = app
        .projections()
        .grants_as_of(app.store(), moment, None, None, usize::MAX, |_, _| true)
        .await
        .map_err(|e| e.to_string())?;
    let mut rows: Vec<String> = past
        .grants
        .iter()
        .map(|grant| {
            let subject = match &grant.subject {
                Subject::User(user) => format!("user:{user}"),
                Subject::Team(team) => format!("team:{team}"),
            };
            let ends = grant.ends_at.map_or("-".to_string(), |end| end.to_rfc3339());
            format!(
                "{subject}\t{}\t{}\t{}\t{ends}\t{}",
                grant.role,
                grant.scope,
                grant.starts_at.to_rfc3339(),
                grant.id
            )
        })
        .collect();
    rows.sort();
    let mut out = io::stdout().lock();
    let mut print = || -> io::Result<()> {
        writeln!(out, "subject\trole\tscope\tgranted_at\tends_at\tgrant")?;
        for row in &rows {
            writeln!(out, "{row}")?;
        }
        out.flush()
    };
    print().map_err(|e| format!("cannot write the grants: {e}"))?;
    eprintln!("{} grants as of {moment}", rows.len());
    Ok(())
}

/// Folds the whole log into fresh projections and reports what they hold and how fast it went.
pub async fn rebuild(store: &EventStore, workflow: Arc<Workflow>) -> Result<(), String> {
    let total = store.head().await.map_err(|e| e.to_string())?.position;
    let mut progress = Progress::new(total);
    let started = Instant::now();
    let model =
        DomainModel::rebuild(workflow, store, |position| progress.show(position)).await.map_err(|e| e.to_string())?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let state = model.state();
    let active = state.grants().filter(|g| g.status == GrantStatus::Active).count();
    let pending = state.requests().filter(|r| r.is_pending()).count();
    println!(
        "rebuilt from {} events in {seconds:.2} s ({:.0} events/s): {} users, {} scopes, {} teams, {} requests ({pending} pending), \
         {} grants ({active} active), {} API tokens",
        model.position(),
        model.position() as f64 / seconds.max(1e-9),
        state.users().count(),
        state.scopes().count(),
        state.teams().count(),
        state.requests().count(),
        state.grants().count(),
        state.api_tokens().count(),
    );
    Ok(())
}

/// Writes the selected events to stdout as they are read (memory stays flat).
pub async fn export(store: &EventStore, format: ExportFormat, selection: EventSelection) -> Result<(), String> {
    let failed = |e: io::Error| format!("cannot write the export: {e}");
    let mut out = BufWriter::with_capacity(256 * 1024, io::stdout().lock());
    if let Some(header) = format.header() {
        out.write_all(header.as_bytes()).map_err(failed)?;
    }
    let mut selected = store.select(selection);
    let mut line = Vec::new();
    while let Some(event) = selected.next().await.map_err(|e| e.to_string())? {
        line.clear();
        format.write(&event, &mut line);
        out.write_all(&line).map_err(failed)?;
    }
    out.flush().map_err(failed)
}

/// Reads an NDJSON export (`-` for stdin) into the store's empty log; a refusal names the line.
pub async fn import(store: &EventStore, file: &str) -> Result<(), String> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(BufReader::new(File::open(file).map_err(|e| format!("cannot open {file}: {e}"))?))
    };
    // The store judges each event as soon as it takes it, so the line last read is the one refused.
    let line_number = Cell::new(0usize);
    let events = reader.lines().enumerate().filter_map(|(index, line)| {
        line_number.set(index + 1);
        let line = match line {
            Ok(line) if line.trim().is_empty() => return None,
            Ok(line) => line,
            Err(error) => return Some(Err(format!("cannot read: {error}"))),
        };
        Some(serde_json::from_str::<RecordedEvent>(&line).map_err(|error| format!("not an exported event: {error}")))
    });
    match store.import(events).await {
        Ok(head) => {
            println!("imported {} events, head {}", head.position, head.hash);
            Ok(())
        }
        Err(error @ (ImportError::Source(_) | ImportError::Refused { .. })) => {
            Err(format!("{file}:{}: {error}; nothing was imported", line_number.get()))
        }
        Err(error) => Err(format!("{error}; nothing was imported")),
    }
}

/// Prints `simulate`'s differences to stdout (a table with a header, or NDJSON) and its summary to stderr.
pub fn print_simulated(simulated: &Simulated, ndjson: bool) -> Result<(), String> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut print = || -> io::Result<()> {
        if !ndjson {
            writeln!(out, "position\tkind\tuser\trole\tscope\tdetail")?;
        }
        for difference in &simulated.differences {
            if ndjson {
                serde_json::to_writer(&mut out, difference)?;
                writeln!(out)?;
            } else {
                let position = difference.position.map_or("-".to_string(), |p| p.to_string());
                writeln!(
                    out,
                    "{position}\t{}\t{}\t{}\t{}\t{}",
                    difference.kind.name(),
                    difference.user,
                    difference.role,
                    difference.scope,
                    difference.detail
                )?;
            }
        }
        out.flush()
    };
    print().map_err(|e| format!("cannot write the differences: {e}"))?;
    let counts = &simulated.summary;
    eprintln!(
        "{} differences through position {}: {} decision_without_authority, {} grant_not_allowed, {} decider_gained, \
         {} decider_lost",
        simulated.differences.len(),
        simulated.position,
        counts.decision_without_authority,
        counts.grant_not_allowed,
        counts.decider_gained,
        counts.decider_lost
    );
    Ok(())
}

/// Progress on stderr: a bar redrawn in place on a terminal, a plain line every 10% otherwise.
struct Progress {
    total: i64,
    started: Instant,
    terminal: bool,
    drawn_at: Option<Instant>,
    tenths_told: i64,
}

impl Progress {
    fn new(total: i64) -> Self {
        Progress {
            total,
            started: Instant::now(),
            terminal: io::stderr().is_terminal(),
            drawn_at: None,
            tenths_told: 0,
        }
    }

    fn show(&mut self, position: i64) {
        let fraction = if self.total > 0 { (position as f64 / self.total as f64).min(1.0) } else { 1.0 };
        let rate = position as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        if self.terminal {
            if self.drawn_at.is_some_and(|at| at.elapsed() < Duration::from_millis(100)) {
                return;
            }
            self.drawn_at = Some(Instant::now());
            const WIDTH: usize = 30;
            let filled = (fraction * WIDTH as f64) as usize;
            eprint!(
                "\r[{}{}] {:3.0}% {position}/{} events, {rate:.0} events/s ",
                "#".repeat(filled),
                ".".repeat(WIDTH - filled),
                fraction * 100.0,
                self.total
            );
        } else {
            let tenths = (fraction * 10.0) as i64;
            if tenths > self.tenths_told {
                self.tenths_told = tenths;
                eprintln!("rebuild: {}% ({position} of {} events, {rate:.0} events/s)", tenths * 10, self.total);
            }
        }
    }

    fn finish(&mut self) {
        if self.terminal {
            self.drawn_at = None; // the last figures, however recently the bar was drawn
            self.show(self.total);
            eprintln!();
        }
    }
}
