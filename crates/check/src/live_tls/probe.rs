//! One live connection: TCP to an address, the SMTP dialogue up to STARTTLS (RFC 3207) or
//! TLS at once (implicit TLS, RFC 8314 §3), the handshake with rustls, and what the server
//! presented. Probes are kept in a [`ProbeCache`] for the whole run, so a mail host shared
//! by many domains is connected to once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, PeerIncompatible,
    RootCertStore, SignatureScheme,
};

use super::certificate;
use super::smtp::{self, DialogueError};

/// How TLS is reached on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// SMTP, then STARTTLS (RFC 3207): port 25 and 587.
    SmtpStarttls,
    /// TLS at once, SMTP inside (RFC 8314 §3.3): port 465.
    SmtpImplicit,
    /// TLS at once, IMAP inside (RFC 8314 §3.2): port 993.
    ImapImplicit,
}

/// One probe: where, how, and the name sent as SNI (the host the certificate must name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub addr: SocketAddr,
    pub mode: Mode,
    pub host: String,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No TCP connection (refused, unreachable, timed out).
    Unreachable(String),
    /// This machine has no route to the address (no IPv6 here, say): nothing is known of
    /// the server.
    NoLocalRoute(String),
    /// EHLO did not list STARTTLS (the EHLO reply).
    NoStarttls(String),
    /// The server answered the TLS handshake with a protocol-version alert, or chose a
    /// version below 1.2: it only speaks TLS 1.0/1.1 (rustls offers 1.2 and 1.3 only).
    OldVersion(String),
    /// The dialogue or the handshake failed at `step`.
    Failed { step: String, detail: String },
    /// A TLS session was made.
    Tls(Session),
}

/// A completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `TLS 1.2` or `TLS 1.3`.
    pub version: String,
    /// The certificates presented, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
    /// Whether the chain leads to a trusted root (system roots plus the extra ones),
    /// judged apart from the name and the dates; `Err` says why not.
    pub trust: Result<(), String>,
}

/// Probes of one run, shared by its domains: each (address, mode, host) is probed once,
/// also when several domains ask at the same time. Cloning shares the cache.
#[derive(Clone, Default)]
pub struct ProbeCache {
    inner: Arc<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    probes: Mutex<HashMap<ProbeKey, Arc<tokio::sync::OnceCell<Arc<Outcome>>>>>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

impl std::fmt::Debug for ProbeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.probes.lock().map(|p| p.len()).unwrap_or(0);
        f.debug_struct("ProbeCache").field("probes", &n).finish()
    }
}

/// The connection's parameters besides the key.
pub struct Settings<'a> {
    pub ehlo_name: &'a str,
    pub timeout: Duration,
    pub extra_roots: &'a [CertificateDer<'static>],
}

impl ProbeCache {
    /// The outcome for `key`, probing at most once per cache.
    pub async fn probe(&self, key: &ProbeKey, settings: &Settings<'_>) -> Arc<Outcome> {
        let cell = {
            let mut probes = self.inner.probes.lock().unwrap_or_else(|p| p.into_inner());
            probes.entry(key.clone()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let verifier = self
                .inner
                .verifier
                .get_or_init(|| verifier(settings.extra_roots))
                .clone();
            Arc::new(match verifier {
                Ok(v) => run(key, settings, v).await,
                Err(e) => Outcome::Failed {
                    step: "trust anchors".into(),
                    detail: e,
                },
            })
        })
        .await
        .clone()
    }

    /// How many distinct probes were made (for tests and measurements).
    pub fn len(&self) -> usize {
        self.inner.probes.lock().map(|p| p.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The verifier of trust: Mozilla's roots (webpki-roots, as the MTA-STS fetch) plus the
/// extra anchors given.
fn verifier(extra: &[CertificateDer<'static>]) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("an extra trust anchor is not usable: {e}"))?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| e.to_string())
}

/// Accepts any certificate so the handshake completes and the chain can be read (the
/// trust is judged afterwards), but checks the handshake signatures for real.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether a failed connect says that this machine cannot send to the address at all
/// (`ENETUNREACH`: no route, typically an IPv6 address where the host has no IPv6;
/// `EADDRNOTAVAIL`: no source address of that family), rather than anything about the
/// server.
fn is_local_route_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::AddrNotAvailable
    )
}

async fn run(
    key: &ProbeKey,
    settings: &Settings<'_>,
    verifier: Arc<WebPkiServerVerifier>,
) -> Outcome {
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(key.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if is_local_route_error(&e) => return Outcome::NoLocalRoute(e.to_string()),
        Ok(Err(e)) => return Outcome::Unreachable(e.to_string()),
        Err(_) => {
            return Outcome::Unreachable(format!(
                "no connection within {} s",
                settings.timeout.as_secs_f32()
            ));
        }
    };
    match tokio::time::timeout_at(deadline, session(key, settings, verifier, stream)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failed {
            step: "session".into(),
            detail: format!(
                "the server did not finish within {} s",
                settings.timeout.as_secs_f32()
            ),
        },
    }
}

async fn session(
    key: &ProbeKey,
    settings: &Settings<'_>,
    verifier: Arc<WebPkiServerVerifier>,
    stream: TcpStream,
) -> Outcome {
    let stream = match key.mode {
        Mode::SmtpStarttls => match smtp::starttls(stream, settings.ehlo_name).await {
            Ok((s, _)) => s,
            Err(DialogueError::NoStarttls(reply)) => return Outcome::NoStarttls(reply.text()),
            Err(DialogueError::Refused { step, reply }) => {
                return Outcome::Failed {
                    step: step.into(),
                    detail: format!("the server answered {}", reply.text()),
                };
            }
            Err(DialogueError::Broken { step, detail }) => {
                return Outcome::Failed {
                    step: step.into(),
                    detail,
                };
            }
        },
        Mode::SmtpImplicit | Mode::ImapImplicit => stream,
    };
    let Ok(name) = ServerName::try_from(key.host.trim_end_matches('.').to_string()) else {
        return Outcome::Failed {
            step: "TLS handshake".into(),
            detail: format!("{} is not a DNS name usable for SNI", key.host),
        };
    };
    let config = match ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
    {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Recorder {
                inner: verifier.clone(),
            }))
            .with_no_client_auth(),
        Err(e) => {
            return Outcome::Failed {
                step: "TLS handshake".into(),
                detail: e.to_string(),
            };
        }
    };
    let mut tls = match TlsConnector::from(Arc::new(config))
        .connect(name.clone(), stream)
        .await
    {
        Ok(tls) => tls,
        Err(e) => return handshake_failure(&e),
    };
    let (_, connection) = tls.get_ref();
    let version = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
        other => format!("{other:?}"),
    };
    let chain: Vec<Vec<u8>> = connection
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.to_vec())
        .collect();
    // Leave politely; the answer does not matter.
    let bye: &[u8] = match key.mode {
        Mode::ImapImplicit => b"a LOGOUT\r\n",
        _ => b"QUIT\r\n",
    };
    let _ = tls.write_all(bye).await;
    let _ = tls.shutdown().await;
    let trust = judge_trust(&verifier, &chain, &name);
    Outcome::Tls(Session {
        version,
        chain,
        trust,
    })
}

/// The handshake error as an outcome: a protocol-version alert (or a server choosing a
/// version rustls does not speak) means TLS older than 1.2.
fn handshake_failure(e: &std::io::Error) -> Outcome {
    let tls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::AlertReceived(AlertDescription::ProtocolVersion))
        | Some(rustls::Error::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13)) => {
            Outcome::OldVersion(e.to_string())
        }
        _ => Outcome::Failed {
            step: "TLS handshake".into(),
            detail: e.to_string(),
        },
    }
}

/// Whether the chain leads to a trusted root, apart from the name and the dates (those
/// have findings of their own): a name mismatch is reported by webpki only once the chain
/// verified, and an expired leaf is verified again at a time inside its validity.
fn judge_trust(
    verifier: &WebPkiServerVerifier,
    chain: &[Vec<u8>],
    name: &ServerName<'static>,
) -> Result<(), String> {
    let Some((leaf_der, rest)) = chain.split_first() else {
        return Err("the server presented no certificate".into());
    };
    let leaf = CertificateDer::from(leaf_der.as_slice());
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let verify = |now: UnixTime| verifier.verify_server_cert(&leaf, &intermediates, name, &[], now);
    let mut result = verify(UnixTime::now());
    if let Err(rustls::Error::InvalidCertificate(
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. },
    )) = &result
        && let Some(parsed) = certificate::leaf(leaf_der)
    {
        let inside = parsed.not_before.saturating_add(parsed.not_after) / 2;
        result = verify(UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(inside).unwrap_or(0),
        )));
    }
    match result {
        Ok(_)
        | Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Ok(()),
        Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Err(
            "the chain does not lead to a trusted root (unknown issuer: self-signed, a private CA, or an intermediate missing from the chain)".into(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_route_from_here_is_not_the_servers_fault() {
        use std::io::{Error, ErrorKind};
        assert!(super::is_local_route_error(&Error::from(
            ErrorKind::NetworkUnreachable
        )));
        assert!(super::is_local_route_error(&Error::from(
            ErrorKind::AddrNotAvailable
        )));
        assert!(!super::is_local_route_error(&Error::from(
            ErrorKind::ConnectionRefused
        )));
        assert!(!super::is_local_route_error(&Error::from(
            ErrorKind::TimedOut
        )));
        assert!(!super::is_local_route_error(&Error::from(
            ErrorKind::HostUnreachable
        )));
    }
}
