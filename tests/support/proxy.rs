//! A TCP proxy in front of a real server that can go silent, as a host whose network was cut
//! does: connections stay open and new ones are accepted, but nothing passes either way, and
//! nothing is refused or reset. Once it answers again, what was held passes on.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{tcp::OwnedReadHalf, tcp::OwnedWriteHalf, TcpListener, TcpStream},
    sync::watch,
};

pub struct SilentProxy {
    pub port: u16,
    silent: Arc<watch::Sender<bool>>,
}

impl SilentProxy {
    /// Listens on a free loopback port, passing each connection on to `upstream`.
    pub async fn start(upstream: SocketAddr) -> SilentProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(watch::Sender::new(false));
        let state = silent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    state.subscribe().wait_for(|silent| !silent).await.ok();
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let ((client_in, client_out), (server_in, server_out)) = (client.into_split(), server.into_split());
                    tokio::spawn(pump(client_in, server_out, state.subscribe()));
                    tokio::spawn(pump(server_in, client_out, state.subscribe()));
                });
            }
        });
        SilentProxy { port, silent }
    }

    pub fn go_silent(&self) {
        self.silent.send_replace(true);
    }

    pub fn answer_again(&self) {
        self.silent.send_replace(false);
    }
}

/// Copies one direction, holding every chunk while the proxy is silent.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut silent: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if silent.wait_for(|silent| !silent).await.is_err() || to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
