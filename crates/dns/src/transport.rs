//! DNS over UDP and TCP (RFC 1035 §4.2, RFC 7766): one request, its answer(s), with a
//! timeout per message, TSIG when a key is given, and failures worded for a person.
//!
//! Built on tokio sockets and hickory-proto's message codec rather than hickory-net's
//! exchanges, which verify TSIG before the error field can be read (see [`crate::tsig`])
//! and report a refused connection or a timeout without saying which server or how long.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use mailzone_records::Transport;

use crate::DnsError;
use crate::error::{Cause, human_duration};
use crate::tsig::{AnswerVerifier, Signer, Verified};

/// The largest UDP message mailzone sends or asks for: the EDNS buffer size the DNS Flag
/// Day 2020 recommends, which avoids IP fragmentation.
pub(crate) const UDP_PAYLOAD: u16 = 1232;

/// The receive buffer of a UDP answer: the payload size mailzone advertises
/// ([`UDP_PAYLOAD`]) with room for servers that send more than asked (up to the common
/// 4096); a longer datagram is treated as truncated. Not 64 KiB: zeroing that for every
/// question was a measurable part of a 1,000-domain check.
const UDP_BUFFER: usize = 4096;

/// RFC 1035 §4.2.2: TCP messages carry a 16-bit length.
pub(crate) const TCP_MAX: usize = 65535;

/// TCP connections opened to one server and not answered on yet, at most: fewer than
/// the listen backlog of Knot and BIND (10 by default; `ss -ltn` shows it). A connection
/// the server has not accepted yet waits in that queue, and once the queue is full the
/// kernel drops the next SYN: the client sends it again only after a second (RFC 6298
/// §2.1), which stalled a run opening 16 connections to a busy Knot at once. A connection
/// answered on has been accepted.
pub(crate) const MAX_UNANSWERED_CONNECTIONS: usize = 8;

/// Limits the TCP connections opened to one server and not answered on yet.
pub(crate) type Opening = tokio::sync::Semaphore;

/// An [`Opening`] with [`MAX_UNANSWERED_CONNECTIONS`] permits.
pub(crate) fn opening() -> Opening {
    Opening::new(MAX_UNANSWERED_CONNECTIONS)
}

/// One TCP connection to a server.
pub(crate) struct TcpConn {
    stream: TcpStream,
    server: SocketAddr,
    timeout: Duration,
}

impl TcpConn {
    pub(crate) async fn connect(server: SocketAddr, wait: Duration) -> Result<TcpConn, DnsError> {
        let stream = match timeout(wait, TcpStream::connect(server)).await {
            Err(_) => return Err(no_answer(server, wait, "TCP connection")),
            Ok(Err(e)) => return Err(io_error(server, &e)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(TcpConn {
            stream,
            server,
            timeout: wait,
        })
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), DnsError> {
        let len = u16::try_from(bytes.len()).map_err(|_| {
            DnsError::permanent(
                self.server,
                Cause::Request,
                format!(
                    "a DNS message of {} bytes does not fit in TCP's 65535 (RFC 1035 §4.2.2)",
                    bytes.len()
                ),
            )
        })?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(bytes);
        match timeout(self.timeout, self.stream.write_all(&framed)).await {
            Err(_) => Err(no_answer(self.server, self.timeout, "sending over TCP")),
            Ok(Err(e)) => Err(io_error(self.server, &e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Like [`TcpConn::recv`], but `Ok(None)` when the server had closed the connection
    /// before answering (RFC 7766 §6.2.3 lets it close idle ones): the request was not
    /// read, and may be sent again on a new connection.
    pub(crate) async fn recv_unless_closed(&mut self) -> Result<Option<Vec<u8>>, DnsError> {
        match self.read_frame().await {
            Ok(buf) => Ok(Some(buf)),
            Err(ReadFailure::ClosedBeforeAnswer(_)) => Ok(None),
            Err(ReadFailure::Other(e)) => Err(e),
        }
    }

    pub(crate) async fn recv(&mut self) -> Result<Vec<u8>, DnsError> {
        self.read_frame().await.map_err(|failure| match failure {
            ReadFailure::ClosedBeforeAnswer(e) => io_error(self.server, &e),
            ReadFailure::Other(e) => e,
        })
    }

    /// One length-prefixed message (RFC 1035 §4.2.2).
    async fn read_frame(&mut self) -> Result<Vec<u8>, ReadFailure> {
        let read = async {
            let len = self.stream.read_u16().await.map_err(|e| (true, e))? as usize;
            let mut buf = vec![0; len];
            self.stream
                .read_exact(&mut buf)
                .await
                .map_err(|e| (false, e))?;
            Ok::<_, (bool, io::Error)>(buf)
        };
        match timeout(self.timeout, read).await {
            Err(_) => Err(ReadFailure::Other(no_answer(self.server, self.timeout, ""))),
            Ok(Err((before_answer, e)))
                if before_answer
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                    ) =>
            {
                Err(ReadFailure::ClosedBeforeAnswer(e))
            }
            Ok(Err((_, e))) => Err(ReadFailure::Other(io_error(self.server, &e))),
            Ok(Ok(buf)) => Ok(buf),
        }
    }
}

/// Why reading an answer stopped.
enum ReadFailure {
    /// The connection ended before the answer's length arrived.
    ClosedBeforeAnswer(io::Error),
    Other(DnsError),
}

/// Connections or sockets to one server kept for its next message, at most `MAX` for
/// each runtime that uses them: a message then reuses one instead of making (and closing)
/// its own. A socket is registered with the I/O driver of the runtime that made it, so one
/// made on a current-thread runtime is kept for that runtime's thread alone: there its
/// readiness is seen by the thread awaiting it, with no wake-up of another thread, and it
/// is never handed to a thread whose runtime would not be driving it. One kept longer than
/// [`MAX_IDLE`] is closed instead of reused.
pub(crate) struct Idle<T, const MAX: usize> {
    items: std::sync::Mutex<Vec<Kept<T>>>,
}

/// How long a connection is kept unused: servers close idle TCP connections (RFC 7766
/// §6.2.3; Knot after 10 s by default, BIND after 30 s), and a request sent on one they
/// closed must be sent again on a new one. Kept longer (a run planning a large batch
/// while its first zones' connections wait), it is closed and a new one made.
const MAX_IDLE: Duration = Duration::from_secs(5);

struct Kept<T> {
    /// The thread of the current-thread runtime it was made on; `None`: any.
    owner: Option<std::thread::ThreadId>,
    since: std::time::Instant,
    item: T,
}

impl<T, const MAX: usize> Default for Idle<T, MAX> {
    fn default() -> Self {
        Idle {
            items: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl<T, const MAX: usize> Idle<T, MAX> {
    pub(crate) fn take(&self) -> Option<T> {
        let owner = runtime_owner();
        let mut items = self.items.lock().ok()?;
        // One clock read for all: up to MAX items a thread are looked at per message.
        let now = std::time::Instant::now();
        items.retain(|kept| now.saturating_duration_since(kept.since) < MAX_IDLE);
        let at = items.iter().rposition(|kept| kept.owner == owner)?;
        Some(items.remove(at).item)
    }

    pub(crate) fn keep(&self, item: T) {
        let owner = runtime_owner();
        if let Ok(mut items) = self.items.lock()
            && items.iter().filter(|kept| kept.owner == owner).count() < MAX
        {
            items.push(Kept {
                owner,
                since: std::time::Instant::now(),
                item,
            });
        }
    }
}

/// The thread of the current runtime when it is a current-thread one (its sockets are
/// driven there only); `None` for a multi-thread runtime, whose sockets any of its
/// workers may use.
fn runtime_owner() -> Option<std::thread::ThreadId> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread => {
            Some(std::thread::current().id())
        }
        _ => None,
    }
}

/// UDP sockets connected to one server, kept between TSIG-signed questions: a question
/// then costs a send and a receive instead of a socket made, bound, connected and closed
/// (a SOA question per zone of a 100,000-zone run). Only signed questions reuse a socket:
/// TSIG authenticates their answers, while an unsigned question keeps a fresh random
/// source port against spoofed answers (RFC 5452 §9.2). A socket whose question failed is
/// closed, not kept.
pub(crate) type UdpSockets = Idle<UdpSocket, 32>;

/// Sends one UDP message and waits for the datagram answering it (same ID), on a socket
/// of `sockets` when one is idle (and kept there after an answer).
async fn udp_exchange(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    wait: Duration,
    sockets: Option<&UdpSockets>,
) -> Result<Vec<u8>, DnsError> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("a literal address")
    } else {
        "[::]:0".parse().expect("a literal address")
    };
    let kept = sockets.and_then(UdpSockets::take);
    let exchange = async {
        let socket = match kept {
            Some(socket) => socket,
            None => {
                let socket = UdpSocket::bind(local).await?;
                socket.connect(server).await?;
                socket
            }
        };
        socket.send(bytes).await?;
        let mut buf = vec![0; UDP_BUFFER];
        loop {
            let n = socket.recv(&mut buf).await?;
            // Anything not answering this request (a late answer to an earlier one) is
            // ignored; the ID is checked again, with the rest, after decoding.
            if n >= 12 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                buf.truncate(n);
                if n == UDP_BUFFER {
                    // The datagram may have been longer than the buffer, and the kernel
                    // dropped the rest: answered as truncated (TC, RFC 1035 §4.1.1), so
                    // the question is asked again over TCP.
                    buf[2] |= 0x02;
                }
                return Ok::<_, io::Error>((buf, socket));
            }
        }
    };
    match timeout(wait, exchange).await {
        Err(_) => Err(no_answer(server, wait, "")),
        Ok(Err(e)) => Err(io_error(server, &e)),
        Ok(Ok((buf, socket))) => {
            if let Some(sockets) = sockets {
                sockets.keep(socket);
            }
            Ok(buf)
        }
    }
}

pub(crate) fn no_answer(server: SocketAddr, wait: Duration, during: &str) -> DnsError {
    let during = if during.is_empty() {
        String::new()
    } else {
        format!(" ({during})")
    };
    DnsError::unreachable(
        server,
        format!(
            "no answer from {server} within {}{during}",
            human_duration(wait)
        ),
    )
}

pub(crate) fn io_error(server: SocketAddr, e: &io::Error) -> DnsError {
    let message = match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("connection refused by {server}: is the server running?")
        }
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            format!("{server} closed the connection (reset)")
        }
        io::ErrorKind::UnexpectedEof => {
            format!("{server} closed the connection before answering")
        }
        io::ErrorKind::TimedOut => format!("no answer from {server} (timed out)"),
        _ => format!("cannot talk to {server}: {e}"),
    };
    DnsError::unreachable(server, message)
}

/// An answer, with what TSIG says about it.
pub(crate) struct Answer {
    pub(crate) message: Message,
    /// `None` when no key is configured.
    pub(crate) tsig: Option<Verified>,
}

/// Where and how to send requests.
pub(crate) struct Endpoint<'a> {
    pub(crate) server: SocketAddr,
    pub(crate) timeout: Duration,
    pub(crate) protocol: Transport,
    pub(crate) signer: Option<&'a Signer>,
    pub(crate) counter: Option<&'a AtomicU64>,
    /// Sockets kept between signed UDP questions (none: a socket per question).
    pub(crate) udp_sockets: Option<&'a UdpSockets>,
    /// The TCP connections to the server being opened and not answered on yet, shared by
    /// the requests to it (none: a one-off request, opening its own connection at once).
    pub(crate) opening: Option<&'a Opening>,
}

/// A request encoded and signed once, ready to be sent (again, on a fresh connection).
pub(crate) struct Encoded<'a> {
    bytes: Vec<u8>,
    verifier: Option<AnswerVerifier<'a>>,
}

impl Encoded<'_> {
    /// Its size on the wire (the TSIG record included).
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

impl<'a> Endpoint<'a> {
    fn count(&self) {
        if let Some(c) = self.counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Encodes (and signs) `request`.
    fn encode_raw(&self, request: &Message) -> Result<Encoded<'a>, DnsError> {
        let mut bytes = request.to_vec().map_err(|e| {
            DnsError::permanent(
                self.server,
                Cause::Request,
                format!("cannot encode the request for {}: {e}", self.server),
            )
        })?;
        let verifier = match self.signer {
            Some(s) => Some(s.sign(&mut bytes, self.server)?),
            None => None,
        };
        Ok(Encoded { bytes, verifier })
    }

    /// Encodes (and signs) `request`, refusing what does not fit in one message.
    pub(crate) fn encode(&self, request: &Message) -> Result<Encoded<'a>, DnsError> {
        self.encode_if_fits(request)?.ok_or_else(|| {
            DnsError::permanent(
                self.server,
                Cause::Request,
                format!(
                    "the request for {} does not fit in one DNS message (65535 bytes, RFC 1035 §4.2.2)",
                    self.server
                ),
            )
        })
    }

    /// Encodes (and signs) `request`; `None` when it does not fit in one DNS message.
    pub(crate) fn encode_if_fits(
        &self,
        request: &Message,
    ) -> Result<Option<Encoded<'a>>, DnsError> {
        let encoded = self.encode_raw(request)?;
        // hickory's encoder does not fail on a message over 65535 bytes: it silently drops
        // the records that do not fit, sets TC and counts only what it wrote. Never send
        // that, nor a message the TSIG record appended after encoding takes over the limit.
        let fits = encoded.len() <= usize::from(u16::MAX)
            && (!is_truncated(&encoded.bytes) || request.truncation);
        Ok(fits.then_some(encoded))
    }

    /// Sends one request and returns its answer: over UDP when configured and the request
    /// fits, over TCP otherwise or when the UDP answer is truncated. `tcp` keeps a
    /// connection open across calls (several queries, one connection).
    pub(crate) async fn exchange(
        &self,
        tcp: &mut Option<TcpConn>,
        request: &Message,
    ) -> Result<Answer, DnsError> {
        let encoded = self.encode(request)?;
        self.exchange_encoded(tcp, request, encoded).await
    }

    /// [`Endpoint::exchange`] of a request already encoded (by [`Endpoint::encode_if_fits`]).
    pub(crate) async fn exchange_encoded(
        &self,
        tcp: &mut Option<TcpConn>,
        request: &Message,
        encoded: Encoded<'a>,
    ) -> Result<Answer, DnsError> {
        if self.protocol == Transport::Udp && encoded.len() <= usize::from(UDP_PAYLOAD) {
            self.count();
            let sockets = self.udp_sockets.filter(|_| self.signer.is_some());
            let raw = udp_exchange(
                self.server,
                &encoded.bytes,
                request.id,
                self.timeout,
                sockets,
            )
            .await?;
            // A truncated answer (TC) is not decoded: it may be cut anywhere.
            if !is_truncated(&raw) {
                let message = self.decode(&raw, request)?;
                return finish(raw, message, encoded.verifier);
            }
            tracing::debug!(server = %self.server, "truncated UDP answer; asking again over TCP");
        }
        self.exchange_tcp(tcp, request, encoded).await
    }

    async fn exchange_tcp(
        &self,
        tcp: &mut Option<TcpConn>,
        request: &Message,
        encoded: Encoded<'a>,
    ) -> Result<Answer, DnsError> {
        let Encoded { bytes, verifier } = encoded;
        let raw = self.first_answer(tcp, &bytes).await?;
        let message = self.decode(&raw, request)?;
        finish(raw, message, verifier)
    }

    /// Sends `bytes` over `tcp` (connecting when it holds none) and reads the first
    /// message back. A kept connection the server has closed meanwhile (RFC 7766 §6.2.3
    /// lets it close idle ones) is replaced by a fresh one and the request sent again: it
    /// was never read. `tcp` holds the connection after an answer, nothing after a failure.
    async fn first_answer(
        &self,
        tcp: &mut Option<TcpConn>,
        bytes: &[u8],
    ) -> Result<Vec<u8>, DnsError> {
        let mut reused = tcp.is_some();
        loop {
            // A new connection's permit is held until its answer (or its failure): see
            // [`Opening`].
            let (conn, _unanswered) = match tcp {
                Some(c) => (c, None),
                None => {
                    let permit = match self.opening {
                        Some(opening) => opening.acquire().await.ok(),
                        None => None,
                    };
                    let conn = TcpConn::connect(self.server, self.timeout).await?;
                    (tcp.insert(conn), permit)
                }
            };
            self.count();
            let answer = match conn.send(bytes).await {
                Ok(()) => conn.recv_unless_closed().await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(Some(raw)) => return Ok(raw),
                Ok(None) | Err(_) if reused => {
                    *tcp = None;
                    reused = false;
                }
                Ok(None) => {
                    *tcp = None;
                    return Err(DnsError::unreachable(
                        self.server,
                        format!(
                            "{} closed the TCP connection without answering",
                            self.server
                        ),
                    ));
                }
                Err(e) => {
                    *tcp = None;
                    return Err(e);
                }
            }
        }
    }

    /// Decodes an answer and checks it answers `request` (RFC 5452 §4.3: ID and question).
    pub(crate) fn decode(&self, raw: &[u8], request: &Message) -> Result<Message, DnsError> {
        let server = self.server;
        let message = Message::from_vec(raw).map_err(|e| {
            DnsError::permanent(
                server,
                Cause::Malformed,
                format!("{server} sent a malformed answer: {e}"),
            )
        })?;
        if message.id != request.id || message.message_type != MessageType::Response {
            return Err(DnsError::permanent(
                server,
                Cause::Malformed,
                format!("{server} sent an answer that does not match the request"),
            ));
        }
        if let (Some(q), Some(a)) = (request.queries.first(), message.queries.first())
            && (q.query_type() != a.query_type() || q.name() != a.name())
        {
            return Err(DnsError::permanent(
                server,
                Cause::Malformed,
                format!(
                    "{server} answered a different question ({} {} instead of {} {})",
                    a.name(),
                    a.query_type(),
                    q.name(),
                    q.query_type()
                ),
            ));
        }
        Ok(message)
    }

    /// Sends `request` over `kept` (a connection kept from an earlier message) or a new
    /// TCP connection, and returns the connection, the first message of the answer and the
    /// verifier for the rest of a multi-message answer (a zone transfer). Reusing a kept
    /// connection spares the server an accept and a close per zone read.
    pub(crate) async fn start_stream(
        &self,
        request: &Message,
        kept: Option<TcpConn>,
    ) -> Result<(TcpConn, Vec<u8>, Option<AnswerVerifier<'a>>), DnsError> {
        let Encoded { bytes, verifier } = self.encode(request)?;
        let mut tcp = kept;
        let first = self.first_answer(&mut tcp, &bytes).await?;
        let conn = tcp.expect("an answer leaves its connection");
        Ok((conn, first, verifier))
    }
}

fn finish(
    raw: Vec<u8>,
    message: Message,
    verifier: Option<AnswerVerifier<'_>>,
) -> Result<Answer, DnsError> {
    let tsig = match verifier {
        Some(mut v) => Some(v.verify(&raw, &message)?),
        None => None,
    };
    Ok(Answer { message, tsig })
}

/// The TC bit of an encoded message's header (RFC 1035 §4.1.1).
fn is_truncated(bytes: &[u8]) -> bool {
    bytes.get(2).is_some_and(|flags| flags & 0x02 != 0)
}

/// An EDNS record advertising [`UDP_PAYLOAD`] (RFC 6891 §6.2.5).
pub(crate) fn edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD).set_version(0);
    edns
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{OpCode, Query};
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    /// A loopback "server" that echoes each datagram back (its first two bytes are the ID)
    /// and reports the source port it came from; it answers `answers` datagrams.
    async fn echo_server(answers: usize) -> (SocketAddr, tokio::task::JoinHandle<Vec<u16>>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut ports = Vec::new();
            let mut buf = [0u8; 512];
            for _ in 0..answers {
                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                ports.push(from.port());
                socket.send_to(&buf[..n], from).await.unwrap();
            }
            ports
        });
        (addr, task)
    }

    /// A socket kept on a current-thread runtime is registered with that runtime's I/O
    /// driver: another thread's runtime never takes it; at most `MAX` are kept for each.
    #[test]
    fn what_a_current_thread_runtime_kept_only_its_thread_takes() {
        let idle: Idle<u32, 2> = Idle::default();
        let current = || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        };
        current().block_on(async {
            idle.keep(1);
            idle.keep(2);
            idle.keep(3);
        });
        std::thread::scope(|scope| {
            scope.spawn(|| current().block_on(async { assert_eq!(idle.take(), None) }));
        });
        assert_eq!(
            idle.take(),
            None,
            "outside any runtime: none of those either"
        );
        current().block_on(async {
            assert_eq!(
                idle.take(),
                Some(2),
                "the last kept first; the third was not kept"
            );
            assert_eq!(idle.take(), Some(1));
            assert_eq!(idle.take(), None);
        });
    }

    /// One kept longer than the servers' idle timeouts allow is closed, not reused.
    #[test]
    fn what_was_kept_too_long_is_not_taken() {
        let idle: Idle<u32, 2> = Idle::default();
        idle.keep(1);
        idle.items.lock().unwrap()[0].since -= MAX_IDLE;
        idle.keep(2);
        assert_eq!(idle.take(), Some(2));
        assert_eq!(idle.take(), None, "the stale one was dropped");
        assert!(idle.items.lock().unwrap().is_empty());
    }

    /// On a multi-thread runtime any worker may take what another kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_multi_thread_runtime_kept_any_of_its_tasks_takes() {
        let idle = std::sync::Arc::new(Idle::<u32, 2>::default());
        idle.keep(7);
        let other = idle.clone();
        let taken = tokio::spawn(async move { other.take() }).await.unwrap();
        assert_eq!(taken, Some(7));
    }

    #[tokio::test]
    async fn kept_udp_sockets_serve_the_next_question_and_a_failed_one_is_closed() {
        let (server, answered) = echo_server(3).await;
        let sockets = UdpSockets::default();
        let wait = Duration::from_secs(2);
        for id in [1u16, 2, 3] {
            let question = [id.to_be_bytes().as_slice(), &[0; 10]].concat();
            let answer = udp_exchange(server, &question, id, wait, Some(&sockets))
                .await
                .unwrap();
            assert_eq!(answer, question);
        }
        let ports = answered.await.unwrap();
        assert_eq!(ports.len(), 3);
        assert!(
            ports.iter().all(|&p| p == ports[0]),
            "one socket: {ports:?}"
        );
        assert_eq!(sockets.items.lock().unwrap().len(), 1);

        // Nobody answers now: the question times out and its socket is not kept.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let quiet = silent.local_addr().unwrap();
        let question = [4u16.to_be_bytes().as_slice(), &[0; 10]].concat();
        let sockets = UdpSockets::default();
        let failed = udp_exchange(
            quiet,
            &question,
            4,
            Duration::from_millis(50),
            Some(&sockets),
        )
        .await;
        assert!(failed.is_err());
        assert!(sockets.items.lock().unwrap().is_empty());
    }

    /// Answers every DNS message on an accepted connection with itself marked a response.
    async fn answer_on(mut stream: TcpStream) {
        loop {
            let mut len = [0u8; 2];
            if stream.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut raw = vec![0; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut raw).await.unwrap();
            let mut message = Message::from_vec(&raw).unwrap();
            message.metadata.message_type = MessageType::Response;
            let answer = message.to_vec().unwrap();
            let framed = [&(answer.len() as u16).to_be_bytes()[..], &answer].concat();
            stream.write_all(&framed).await.unwrap();
        }
    }

    /// Sixteen requests at once to a server slow to accept its connections: only
    /// [`MAX_UNANSWERED_CONNECTIONS`] wait in its listen queue (Knot's and BIND's hold
    /// 10); the others are opened as earlier ones are answered, and every request is
    /// answered.
    #[tokio::test]
    async fn connections_not_answered_yet_are_few_enough_for_the_listen_queue() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        // Shared by the requests as a provider's is (leaked: the tasks outlive no test).
        let opening: &'static Opening = Box::leak(Box::new(opening()));
        let requests: Vec<_> = (0..16u16)
            .map(|id| {
                tokio::spawn(async move {
                    let endpoint = Endpoint {
                        server,
                        timeout: Duration::from_secs(5),
                        protocol: Transport::Tcp,
                        signer: None,
                        counter: None,
                        udp_sockets: None,
                        opening: Some(opening),
                    };
                    let mut request = Message::query();
                    request.metadata.id = id;
                    request.add_query(Query::query(
                        Name::from_ascii("example.test.").unwrap(),
                        RecordType::SOA,
                    ));
                    let answer = endpoint.exchange(&mut None, &request).await;
                    answer.map(|a| a.message.id)
                })
            })
            .collect();

        // The server is busy: the connections made meanwhile wait in its queue.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let accept = |wait| tokio::time::timeout(Duration::from_millis(wait), listener.accept());
        let mut queued = Vec::new();
        while let Ok(Ok((stream, _))) = accept(50).await {
            queued.push(stream);
        }
        assert_eq!(queued.len(), MAX_UNANSWERED_CONNECTIONS);
        let mut accepted = queued.len();
        for stream in queued {
            tokio::spawn(answer_on(stream));
        }
        while accepted < 16 {
            let (stream, _) = accept(5_000).await.expect("a connection").unwrap();
            tokio::spawn(answer_on(stream));
            accepted += 1;
        }
        let mut ids = Vec::new();
        for request in requests {
            ids.push(request.await.unwrap().unwrap());
        }
        ids.sort();
        assert_eq!(ids, (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn a_message_over_65535_bytes_is_refused_not_truncated() {
        let endpoint = Endpoint {
            server: "127.0.0.1:5300".parse().unwrap(),
            timeout: Duration::from_secs(1),
            protocol: Transport::Tcp,
            signer: None,
            counter: None,
            udp_sockets: None,
            opening: None,
        };
        let zone = Name::from_ascii("example.test.").unwrap();
        let mut m = Message::query();
        m.metadata.op_code = OpCode::Update;
        m.add_query(Query::query(zone.clone(), RecordType::SOA));
        let big: Vec<&[u8]> = vec![&[b'a'; 255]; 4];
        for i in 0..100 {
            let owner = Name::from_ascii(format!("k{i}.example.test.")).unwrap();
            m.add_authority(Record::from_rdata(
                owner,
                300,
                RData::TXT(TXT::from_bytes(big.clone())),
            ));
        }
        assert!(endpoint.encode_if_fits(&m).unwrap().is_none());
        let e = endpoint.encode(&m).map(|_| ()).unwrap_err();
        assert!(
            e.to_string().contains("does not fit in one DNS message"),
            "{e}"
        );
        m.authorities.truncate(10);
        assert!(
            endpoint
                .encode_if_fits(&m)
                .unwrap()
                .is_some_and(|encoded| encoded.len() < TCP_MAX)
        );
    }

    #[test]
    fn protocols_parse_and_show() {
        assert_eq!("TCP".parse::<Transport>(), Ok(Transport::Tcp));
        assert_eq!(Transport::Udp.to_string(), "udp");
        assert!("quic".parse::<Transport>().is_err());
    }
}
