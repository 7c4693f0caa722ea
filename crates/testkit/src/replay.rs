//! A cloud DNS provider's HTTP API, played on loopback for tests that cannot reach the
//! real one: an HTTP proxy (`HTTPS_PROXY=http://127.0.0.1:PORT`) that answers every
//! `CONNECT host:443` itself, with a TLS certificate for `host` issued by a CA made for
//! the test (`SSL_CERT_FILE`), and hands each request inside to a handler that answers in
//! the provider's documented shapes. Nothing leaves the machine: the client connects only
//! to the proxy, and the proxy never connects anywhere.
//!
//! The client under test needs no test hook: HTTP clients read `HTTPS_PROXY` and OpenSSL
//! reads `SSL_CERT_FILE` from the environment, so a real `mailzone` process talks to
//! "api.cloudflare.com" as it would in production.
//!
//! The same proxy serves plain HTTP to a client pointed straight at it (a provider whose URL
//! is configurable): then it stands in front of a real server, answering some requests
//! itself (a 429, a 503) and forwarding the rest ([`ReplayRequest::forward_to`]).
//!
//! HTTP/1.1 is hand-parsed here (request line, headers, `Content-Length` or chunked body):
//! the proxy must see the decrypted requests one by one to record them, which a server
//! framework would hide, and the subset a JSON API client sends is small.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One request the client sent, decrypted.
#[derive(Clone, Debug)]
pub struct ReplayRequest {
    /// The host of the `CONNECT` (or of the absolute URL of a plain HTTP request).
    pub host: String,
    pub method: String,
    /// The path with its query string, as sent.
    pub path: String,
    /// Header names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When the request arrived.
    pub at: Instant,
}

impl ReplayRequest {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// A query parameter's value (not percent-decoded).
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Sends this request on to a real HTTP server at `addr` (one connection, closed after
    /// the answer) and returns its answer: a replay that injects faults in front of a real
    /// server forwards what it does not refuse itself.
    pub fn forward_to(&self, addr: SocketAddr) -> io::Result<ReplayResponse> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {addr}\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            if !matches!(
                name.as_str(),
                "host" | "connection" | "content-length" | "transfer-encoding"
            ) {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        stream.write_all(head.as_bytes())?;
        stream.write_all(self.body.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader)?
            .ok_or_else(|| io::Error::other("the server closed without answering"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
        let headers: Vec<(String, String)> = header_fields(&head)
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("content-length")
                    && !n.eq_ignore_ascii_case("connection")
                    && !n.eq_ignore_ascii_case("transfer-encoding")
            })
            .collect();
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            read_chunked(&mut reader)?
        } else {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut body)?;
            body
        };
        Ok(ReplayResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The handler's answer.
#[derive(Clone, Debug)]
pub struct ReplayResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReplayResponse {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> ReplayResponse {
        ReplayResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// `status` with an empty body.
    pub fn empty(status: u16) -> ReplayResponse {
        ReplayResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// The same with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> ReplayResponse {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn FnMut(&ReplayRequest) -> ReplayResponse + Send;

/// The running proxy. Stops when dropped.
pub struct ProviderReplay {
    /// `http://127.0.0.1:PORT`: the value of `HTTPS_PROXY`.
    pub proxy_url: String,
    /// The test CA's certificate (PEM): the value of `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    requests: Arc<Mutex<Vec<ReplayRequest>>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

struct Shared {
    handler: Mutex<Box<Handler>>,
    requests: Arc<Mutex<Vec<ReplayRequest>>>,
    issuer: Issuer<'static, KeyPair>,
    configs: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
}

impl ProviderReplay {
    /// Starts the proxy; `handler` answers every request (called one request at a time).
    pub fn start(
        handler: impl FnMut(&ReplayRequest) -> ReplayResponse + Send + 'static,
    ) -> io::Result<ProviderReplay> {
        let dir = tempfile::Builder::new()
            .prefix("mailzone-replay")
            .tempdir()?;
        let ca_key = KeyPair::generate().map_err(io::Error::other)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "mailzone provider replay CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(io::Error::other)?;
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem())?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            handler: Mutex::new(Box::new(handler)),
            requests: Arc::clone(&requests),
            issuer: Issuer::new(ca, ca_key),
            configs: Mutex::new(HashMap::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("mailzone-replay".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || {
                        let _ = serve_connection(stream, &shared);
                    });
                }
            })?;
        Ok(ProviderReplay {
            proxy_url: format!("http://{addr}"),
            ca_file,
            requests,
            stop,
            addr,
            _dir: dir,
        })
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<ReplayRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }

    /// The environment a client process needs to reach the replay: `HTTPS_PROXY` (both
    /// spellings), `SSL_CERT_FILE`, and an empty `NO_PROXY`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HTTPS_PROXY", self.proxy_url.clone()),
            ("https_proxy", self.proxy_url.clone()),
            ("HTTP_PROXY", self.proxy_url.clone()),
            ("http_proxy", self.proxy_url.clone()),
            ("NO_PROXY", String::new()),
            ("no_proxy", String::new()),
            ("SSL_CERT_FILE", self.ca_file.display().to_string()),
        ]
    }
}

impl Drop for ProviderReplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One client connection: a `CONNECT` tunnel (TLS inside) or plain HTTP proxy requests.
fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let (method, target) = request_line(&head)?;
    if method != "CONNECT" {
        // A plain `http://` URL through the proxy: the target is absolute.
        let (host, _) = split_target(&target);
        let mut writer = stream;
        let mut next = Some(head);
        while let Some(head) = next {
            let (_, target) = request_line(&head)?;
            let (_, path) = split_target(&target);
            let request = read_request(&mut reader, &host, &head, &path)?;
            answer(&mut writer, shared, request)?;
            next = read_head(&mut reader)?;
        }
        return Ok(());
    }
    let host = target.split(':').next().unwrap_or(&target).to_owned();
    let mut writer = stream;
    writer.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
    let config = server_config(shared, &host)?;
    let connection = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let tls = rustls::StreamOwned::new(connection, writer);
    let mut tls = BufReader::new(tls);
    loop {
        let Some(head) = read_head(&mut tls)? else {
            return Ok(());
        };
        let (_, path) = request_line(&head)?;
        let request = read_request(&mut tls, &host, &head, &path)?;
        answer(tls.get_mut(), shared, request)?;
    }
}

/// The host (without port) and the path of a request target: absolute
/// (`http://host:port/path`, through a proxy) or origin-form (`/path`, no host).
fn split_target(target: &str) -> (String, String) {
    let rest = target.strip_prefix("http://").unwrap_or(target);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.split(':').next().unwrap_or(authority);
    (host.to_owned(), path.to_owned())
}

/// The header fields of a request or response head (after its first line), names and
/// values trimmed, names as written.
fn header_fields(head: &str) -> impl Iterator<Item = (String, String)> + '_ {
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
}

/// The TLS config with a certificate for `host` (made on first use).
fn server_config(shared: &Shared, host: &str) -> io::Result<Arc<rustls::ServerConfig>> {
    let mut configs = shared.configs.lock().expect("not poisoned");
    if let Some(config) = configs.get(host) {
        return Ok(Arc::clone(config));
    }
    let key = KeyPair::generate().map_err(io::Error::other)?;
    let params = CertificateParams::new(vec![host.to_owned()]).map_err(io::Error::other)?;
    let cert = params
        .signed_by(&key, &shared.issuer)
        .map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(io::Error::other)?;
    let config = Arc::new(config);
    configs.insert(host.to_owned(), Arc::clone(&config));
    Ok(config)
}

/// The request head up to the blank line; `None` at a clean end of the connection.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let read = match reader.read_line(&mut line) {
            Ok(read) => read,
            // A TLS peer that closes without close_notify, or a timeout on an idle
            // keep-alive connection: the end of this connection either way.
            Err(_) if head.is_empty() => return Ok(None),
            Err(e) => return Err(e),
        };
        if read == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut head"))
            };
        }
        if line == "\r\n" || line == "\n" {
            if head.is_empty() {
                continue;
            }
            return Ok(Some(head));
        }
        head.push_str(&line);
    }
}

fn request_line(head: &str) -> io::Result<(String, String)> {
    let mut words = head.lines().next().unwrap_or("").split(' ');
    match (words.next(), words.next()) {
        (Some(method), Some(target)) => Ok((method.to_owned(), target.to_owned())),
        _ => Err(io::Error::other(format!("bad request line in {head:?}"))),
    }
}

fn read_request(
    reader: &mut impl BufRead,
    host: &str,
    head: &str,
    path: &str,
) -> io::Result<ReplayRequest> {
    let (method, _) = request_line(head)?;
    let headers: Vec<(String, String)> = header_fields(head)
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(reader)?
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(ReplayRequest {
        host: host.to_owned(),
        method,
        path: path.to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    })
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {size:?}")))?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn answer(writer: &mut impl Write, shared: &Shared, request: ReplayRequest) -> io::Result<()> {
    let response = {
        let mut handler = shared.handler.lock().expect("not poisoned");
        (handler)(&request)
    };
    shared.requests.lock().expect("not poisoned").push(request);
    let mut text = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(&response.body);
    writer.write_all(text.as_bytes())?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
