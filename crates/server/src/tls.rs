//! HTTPS on the service's listeners when `[serve.tls]` names a certificate chain and its
//! private key (otherwise a reverse proxy in front terminates TLS). rustls with the `ring`
//! provider; the handshake runs inside `accept`, bounded by [`HANDSHAKE_TIMEOUT`] so a
//! silent client cannot hold the listener.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mailzone_records::{FileRef, ServeTls};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for the configured certificate and key. Errors name the config key and the
/// file, never key material.
pub fn acceptor(tls: &ServeTls) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> =
        read_pem(&tls.certificate, "the certificate chain", |path| {
            CertificateDer::pem_file_iter(path).and_then(|certs| certs.collect())
        })?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{}: {} holds no certificate",
        tls.certificate.key_path,
        tls.certificate.path.display()
    );
    let key = read_pem(&tls.private_key, "a private key from", |path| {
        PrivateKeyDer::from_pem_file(path)
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "{} and {}: the private key does not fit the certificate",
                tls.certificate.key_path, tls.private_key.key_path
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reads `file` with `read`; an error names the config key, what was read and the file.
fn read_pem<T, E: std::fmt::Display>(
    file: &FileRef,
    what: &str,
    read: impl FnOnce(&Path) -> Result<T, E>,
) -> anyhow::Result<T> {
    read(&file.path)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "{}: cannot read {what} {}",
                file.key_path,
                file.path.display()
            )
        })
}

/// A TCP listener whose connections are TLS.
pub struct TlsListener {
    pub tcp: TcpListener,
    pub acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
