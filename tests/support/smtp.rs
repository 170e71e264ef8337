//! A real SMTP server on a socket, for the tests: it speaks enough of RFC 5321 for lettre (EHLO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps every message it accepts. It can be stopped (an
//! outage) and started again on the same port.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    /// The message with quoted-printable soft breaks and escapes undone (for reading the bodies).
    pub fn text(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let mut out = Vec::with_capacity(joined.len());
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let escaped = (bytes[i] == b'=' && i + 2 < bytes.len())
                .then(|| u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16).ok())
                .flatten();
            match escaped {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A header's value (unfolded), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ").replace("\r\n\t", " ");
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }
}

#[derive(Clone, Default)]
pub struct SmtpServer {
    /// The address it listens on: loopback, or the bridge of the test hosts' namespaces.
    host: String,
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    /// Raised by each `stop`: sessions opened before it close at their next command.
    generation: Arc<AtomicU64>,
    listening: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl SmtpServer {
    /// Listens on a free port.
    pub async fn start() -> SmtpServer {
        Self::start_on(0).await
    }

    /// A free port where nothing listens yet: connections to it are refused until `start_on` it.
    pub fn unused_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    pub async fn start_on(port: u16) -> SmtpServer {
        Self::start_at("127.0.0.1", port).await
    }

    /// Listens on `host` (an address of this machine) and `port` (0: a free one).
    pub async fn start_at(host: &str, port: u16) -> SmtpServer {
        let listener = TcpListener::bind((host, port)).await.expect("the SMTP port is free");
        let port = listener.local_addr().unwrap().port();
        let server = SmtpServer { host: host.to_string(), port, ..SmtpServer::default() };
        server.accept_on(listener);
        server
    }

    fn accept_on(&self, listener: TcpListener) {
        let (received, generation) = (self.received.clone(), self.generation.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, received.clone(), generation.clone()));
            }
        });
        *self.listening.lock().unwrap() = Some(accepting);
    }

    /// An outage: new connections are refused, and open sessions end at their next command with
    /// `421` (as a server shutting down says), so a message being transferred is either
    /// accepted whole or not at all.
    pub async fn stop(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let accepting = self.listening.lock().unwrap().take();
        if let Some(accepting) = accepting {
            accepting.abort();
            let _ = accepting.await;
        }
    }

    /// Listens again on the same port, keeping what was received before.
    pub async fn restart(&self) {
        let listener = TcpListener::bind((self.host.as_str(), self.port)).await.expect("the SMTP port is free again");
        self.accept_on(listener);
    }

    pub fn url(&self) -> String {
        format!("smtp://{}:{}", self.host, self.port)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived (or panics after `seconds`).
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<ReceivedMail> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {count} mails arrived: {received:#?}",
                received.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

async fn session(stream: TcpStream, received: Arc<Mutex<Vec<ReceivedMail>>>, generation: Arc<AtomicU64>) {
    let opened_in = generation.load(Ordering::SeqCst);
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut to = Vec::new();
    if writer.write_all(b"220 localhost test SMTP\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        if generation.load(Ordering::SeqCst) != opened_in {
            let _ = writer.write_all(b"421 localhost closing\r\n").await;
            return;
        }
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250 localhost\r\n"
        } else if command.starts_with("RCPT TO:") {
            let address = line[8..].trim().trim_start_matches('<').split('>').next().unwrap_or_default();
            to.push(address.to_string());
            b"250 OK\r\n"
        } else if command.starts_with("DATA") {
            if writer.write_all(b"354 end with .\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push_str("\r\n");
            }
            received.lock().unwrap().push(ReceivedMail { to: std::mem::take(&mut to), data });
            b"250 queued\r\n"
        } else if command.starts_with("QUIT") {
            let _ = writer.write_all(b"221 bye\r\n").await;
            return;
        } else {
            // MAIL FROM, RSET, NOOP: all fine.
            if command.starts_with("RSET") {
                to.clear();
            }
            b"250 OK\r\n"
        };
        if writer.write_all(reply).await.is_err() {
            return;
        }
    }
}
