//! A fault-injecting DNS proxy: it sits on a loopback port between mailzone and a real
//! server ([`crate::DnsServer`]), forwards UDP and TCP messages both ways, and spoils the
//! ones a [`Rule`] matches: drop, delay, duplicate, truncate (TC), reorder, answer with an
//! error RCODE, corrupt the request's TSIG MAC (the server then answers BADSIG), or cut a
//! TCP connection in the middle of a message or of a zone transfer.
//!
//! Hand-written on purpose: a test kit must be able to send what no DNS library would
//! (half a message, a wrong TC bit, a broken MAC). It reads only the header and the first
//! question (RFC 1035 §4.1.1–4.1.2) to match messages, and rewrites only header bits.
//! Everything stays on 127.0.0.1.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Which messages a rule applies to, judged on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Any,
    /// RFC 2136 UPDATE (opcode 5).
    Update,
    /// Zone transfers (QTYPE AXFR, 252).
    Axfr,
    /// SOA queries (the serial checks of propagation and of the in-sync shortcut).
    Soa,
    /// Queries other than SOA and AXFR (the per-RRset reads).
    OtherQuery,
}

/// What happens to a matched exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request reaches the server; its answer never comes back.
    DropAnswer,
    /// The request never reaches the server.
    DropRequest,
    /// The answer comes back this much later.
    Delay(Duration),
    /// The answer comes back twice.
    Duplicate,
    /// UDP only: the answer is cut to its header and question with TC set.
    Truncate,
    /// UDP only: the answer is held back until the next answer has gone out (or 500 ms).
    Reorder,
    /// The proxy answers itself with this RCODE (2 SERVFAIL, 5 REFUSED, 9 NOTAUTH), and
    /// the server never sees the request.
    Rcode(u8),
    /// One byte of the request's TSIG MAC is flipped: the real server answers NOTAUTH with
    /// TSIG error BADSIG (RFC 8945 §5.2.2).
    BadSig,
    /// TCP only: half of the answer's bytes are sent, then the connection is closed.
    CutMidMessage,
    /// TCP only: this many answer messages go through (of a transfer), then the connection
    /// is closed.
    CutAfterMessages(usize),
}

/// A fault applied to the next `times` messages that match.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub matches: Match,
    pub fault: Fault,
    pub times: usize,
}

impl Rule {
    /// `fault` on every message matching `matches`.
    pub fn always(matches: Match, fault: Fault) -> Rule {
        Rule {
            matches,
            fault,
            times: usize::MAX,
        }
    }

    /// `fault` on the first `times` messages matching `matches`.
    pub fn times(matches: Match, fault: Fault, times: usize) -> Rule {
        Rule {
            matches,
            fault,
            times,
        }
    }
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    applied: AtomicUsize,
    forwarded: AtomicUsize,
    stop: AtomicBool,
    /// A held-back UDP answer (for [`Fault::Reorder`]) and where it goes.
    held: Mutex<Option<(Vec<u8>, SocketAddr)>>,
}

impl Shared {
    /// The fault for a request, counting it against its rule.
    fn fault_for(&self, request: &[u8]) -> Option<Fault> {
        let kind = classify(request)?;
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let rule = rules
            .iter_mut()
            .find(|r| r.times > 0 && (r.matches == Match::Any || r.matches == kind))?;
        rule.times -= 1;
        self.applied.fetch_add(1, Ordering::Relaxed);
        Some(rule.fault)
    }
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    /// Where clients send their messages (UDP and TCP on one port).
    pub addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (a loopback server), with no rule yet.
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        assert!(
            upstream.ip().is_loopback(),
            "the proxy forwards to loopback only"
        );
        let (udp, tcp) = bind_pair()?;
        let addr = udp.local_addr()?;
        let shared = Arc::new(Shared::default());
        udp.set_read_timeout(Some(Duration::from_millis(100)))?;
        tcp.set_nonblocking(true)?;
        {
            let shared = Arc::clone(&shared);
            thread::spawn(move || serve_udp(udp, upstream, shared));
        }
        {
            let shared = Arc::clone(&shared);
            thread::spawn(move || serve_tcp(tcp, upstream, shared));
        }
        Ok(FaultProxy {
            addr,
            upstream,
            shared,
        })
    }

    /// The server behind the proxy.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Adds a rule; the first rule that matches a message (and has uses left) applies.
    pub fn inject(&self, rule: Rule) {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
    }

    /// Removes every rule: from now on, messages pass unchanged.
    pub fn clear(&self) {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many messages a rule has spoiled so far.
    pub fn faults_applied(&self) -> usize {
        self.shared.applied.load(Ordering::Relaxed)
    }

    /// How many requests were forwarded to the server so far.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// A UDP socket and a TCP listener on the same free loopback port.
fn bind_pair() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let port = crate::free_port();
        let at = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match (UdpSocket::bind(at), TcpListener::bind(at)) {
            (Ok(udp), Ok(tcp)) => return Ok((udp, tcp)),
            (Err(e), _) | (_, Err(e)) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

/// What kind of request a message is, `None` when it is too short to be one.
fn classify(message: &[u8]) -> Option<Match> {
    let flags = message.get(2)?;
    let opcode = (flags >> 3) & 0x0f;
    if opcode == 5 {
        return Some(Match::Update);
    }
    Some(match question_type(message)? {
        6 => Match::Soa,
        252 => Match::Axfr,
        _ => Match::OtherQuery,
    })
}

/// The QTYPE of the first question (names in questions are never compressed in practice).
fn question_type(message: &[u8]) -> Option<u16> {
    let mut at = 12;
    loop {
        let len = usize::from(*message.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        at += len;
    }
    Some(u16::from_be_bytes([
        *message.get(at)?,
        *message.get(at + 1)?,
    ]))
}

/// The end of the header and first question: what an error answer keeps.
fn question_end(message: &[u8]) -> usize {
    let mut at = 12;
    while let Some(&len) = message.get(at) {
        at += 1 + usize::from(len);
        if len == 0 {
            return (at + 4).min(message.len());
        }
    }
    message.len()
}

/// An answer the proxy makes up: the request's header and question, QR set, this RCODE,
/// no records (and so no TSIG: a server that lost the key answers unsigned too).
fn error_answer(request: &[u8], rcode: u8) -> Vec<u8> {
    let mut answer = request[..question_end(request)].to_vec();
    if answer.len() < 12 {
        return answer;
    }
    answer[2] |= 0x80; // QR
    answer[3] = (answer[3] & 0xf0) | (rcode & 0x0f);
    answer[3] &= 0x7f; // RA off
    let qdcount = u16::from(answer.len() > 12);
    answer[4..6].copy_from_slice(&qdcount.to_be_bytes());
    answer[6..12].fill(0);
    answer
}

/// The answer cut to header and question with TC set (RFC 1035 §4.1.1, RFC 7766 §5).
fn truncated(answer: &[u8]) -> Vec<u8> {
    let mut cut = error_answer(answer, answer.get(3).map_or(0, |b| b & 0x0f));
    if cut.len() >= 3 {
        cut[2] |= 0x02;
        cut[2] |= 0x80;
    }
    cut
}

/// The request with one byte of its TSIG MAC flipped. The TSIG record ends the message:
/// MAC, original ID (2), error (2), other-data length (2, zero in a request); an
/// hmac-sha256 MAC is 32 bytes, so the byte 10 from the end lies inside it.
fn corrupt_mac(request: &[u8]) -> Vec<u8> {
    let mut bad = request.to_vec();
    if bad.len() > 40 {
        let at = bad.len() - 10;
        bad[at] ^= 0xff;
    }
    bad
}

fn serve_udp(socket: UdpSocket, upstream: SocketAddr, shared: Arc<Shared>) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 65_535];
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok((len, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let request = buf[..len].to_vec();
        let socket = Arc::clone(&socket);
        let shared = Arc::clone(&shared);
        thread::spawn(move || udp_exchange(&socket, &request, client, upstream, &shared));
    }
}

fn udp_exchange(
    socket: &UdpSocket,
    request: &[u8],
    client: SocketAddr,
    upstream: SocketAddr,
    shared: &Shared,
) {
    let fault = shared.fault_for(request);
    let send = |bytes: &[u8]| {
        let _ = socket.send_to(bytes, client);
    };
    let request = match fault {
        Some(Fault::DropRequest) => return,
        Some(Fault::Rcode(rcode)) => return send(&error_answer(request, rcode)),
        Some(Fault::BadSig) => corrupt_mac(request),
        _ => request.to_vec(),
    };
    let Some(answer) = forward_udp(&request, upstream, shared) else {
        return;
    };
    match fault {
        Some(Fault::DropAnswer) => {}
        Some(Fault::Delay(d)) => {
            thread::sleep(d);
            send(&answer);
        }
        Some(Fault::Duplicate) => {
            send(&answer);
            send(&answer);
        }
        Some(Fault::Truncate) => send(&truncated(&answer)),
        Some(Fault::Reorder) => {
            *shared.held.lock().unwrap_or_else(|p| p.into_inner()) = Some((answer, client));
            thread::sleep(Duration::from_millis(500));
            release_held(socket, shared);
        }
        _ => {
            send(&answer);
            release_held(socket, shared);
        }
    }
}

/// Sends the held-back answer, if any, after the one that overtook it.
fn release_held(socket: &UdpSocket, shared: &Shared) {
    let held = shared.held.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some((answer, client)) = held {
        let _ = socket.send_to(&answer, client);
    }
}

fn forward_udp(request: &[u8], upstream: SocketAddr, shared: &Shared) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    socket.send_to(request, upstream).ok()?;
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let mut buf = vec![0u8; 65_535];
    let len = socket.recv(&mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}

fn serve_tcp(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, _)) => {
                let shared = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = tcp_connection(client, upstream, &shared);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// One client connection: each request is forwarded on one upstream connection, and the
/// answers to it (several for a transfer) are copied back until the next request comes.
fn tcp_connection(mut client: TcpStream, upstream: SocketAddr, shared: &Shared) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(Duration::from_millis(300)))?;
    loop {
        let request = read_frame(&mut client)?;
        let fault = shared.fault_for(&request);
        let request = match fault {
            Some(Fault::DropRequest) => continue,
            Some(Fault::Rcode(rcode)) => {
                client.write_all(&framed(&error_answer(&request, rcode)))?;
                continue;
            }
            Some(Fault::BadSig) => corrupt_mac(&request),
            _ => request,
        };
        server.write_all(&framed(&request))?;
        shared.forwarded.fetch_add(1, Ordering::Relaxed);
        relay_answers(&mut server, &mut client, fault, classify(&request))?;
    }
}

/// Copies the server's answers to one request back to the client, spoiled by `fault`.
/// A transfer's answer is several messages: they are copied until the server pauses.
fn relay_answers(
    server: &mut TcpStream,
    client: &mut TcpStream,
    fault: Option<Fault>,
    kind: Option<Match>,
) -> io::Result<()> {
    let mut sent = 0usize;
    loop {
        let answer = match read_frame(server) {
            Ok(answer) => answer,
            // The server is done with this request (a transfer pauses only at its end).
            Err(e) if sent > 0 && is_timeout(&e) => return Ok(()),
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        match fault {
            Some(Fault::DropAnswer) => {}
            Some(Fault::Delay(d)) => {
                thread::sleep(d);
                client.write_all(&framed(&answer))?;
            }
            Some(Fault::Duplicate) => {
                client.write_all(&framed(&answer))?;
                client.write_all(&framed(&answer))?;
            }
            Some(Fault::CutMidMessage) => {
                let whole = framed(&answer);
                client.write_all(&whole[..whole.len() / 2])?;
                return client.shutdown(std::net::Shutdown::Both);
            }
            Some(Fault::CutAfterMessages(n)) if sent >= n => {
                return client.shutdown(std::net::Shutdown::Both);
            }
            _ => client.write_all(&framed(&answer))?,
        }
        sent += 1;
        if kind != Some(Match::Axfr) {
            return Ok(());
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `example.test. SOA` (ID 0x1234, RD).
    fn soa_query() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x04test\x00");
        m.extend_from_slice(&[0, 6, 0, 1]);
        m
    }

    #[test]
    fn requests_are_classified_by_opcode_and_question_type() {
        let q = soa_query();
        assert_eq!(classify(&q), Some(Match::Soa));
        let mut axfr = q.clone();
        let n = axfr.len();
        axfr[n - 3] = 252;
        assert_eq!(classify(&axfr), Some(Match::Axfr));
        let mut update = q.clone();
        update[2] = 5 << 3;
        assert_eq!(classify(&update), Some(Match::Update));
        assert_eq!(classify(&q[..5]), None);
    }

    #[test]
    fn error_answers_keep_the_id_and_question() {
        let q = soa_query();
        let a = error_answer(&q, 5);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80, "QR");
        assert_eq!(a[3] & 0x0f, 5, "REFUSED");
        assert_eq!(&a[12..], &q[12..]);
        let t = truncated(&a);
        assert_eq!(t[2] & 0x02, 0x02, "TC");
    }
}
