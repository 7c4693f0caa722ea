//! The SMTP dialogue up to the TLS handshake (RFC 5321 §4.2 replies, RFC 3207 STARTTLS):
//! read the greeting, EHLO, find `STARTTLS` among the extensions, ask for it and hand the
//! plain socket back once the server said `220`.

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpStream;

/// A reply longer than this many lines or bytes is not a mail server talking.
const MAX_LINES: usize = 200;
const MAX_LINE: usize = 4096;

/// One SMTP reply: its code and the text of each line (after the code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as the server wrote it, lines joined with ` / `, for messages.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("{} {l}", self.code))
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Whether an EHLO reply lists the STARTTLS extension (RFC 3207 §4: the keyword
    /// `STARTTLS`, case-insensitive, on a line of its own after the greeting line).
    pub fn offers_starttls(&self) -> bool {
        self.lines.iter().skip(1).any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
        })
    }
}

/// Why the dialogue did not reach the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogueError {
    /// The server answered something else than expected (the step and the reply).
    Refused { step: &'static str, reply: Reply },
    /// EHLO succeeded but did not list STARTTLS.
    NoStarttls(Reply),
    /// The connection broke, or a reply was not SMTP.
    Broken { step: &'static str, detail: String },
}

/// Reads one (possibly multi-line) reply: `250-…` lines continue, `250 …` ends it.
pub async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Reply, String> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let mut raw = Vec::new();
        let n = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut raw)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        if !raw.ends_with(b"\n") {
            return Err(format!("a reply line longer than {MAX_LINE} bytes"));
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let this: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or_else(|| format!("not an SMTP reply: {line:?}"))?;
        if code.is_some_and(|c| c != this) {
            return Err(format!("reply codes change within one reply: {line:?}"));
        }
        code = Some(this);
        lines.push(line.get(4..).unwrap_or("").to_string());
        if lines.len() > MAX_LINES {
            return Err(format!("a reply of more than {MAX_LINES} lines"));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(Reply { code: this, lines });
        }
    }
}

async fn command(
    reader: &mut BufReader<TcpStream>,
    step: &'static str,
    line: &str,
) -> Result<Reply, DialogueError> {
    reader
        .get_mut()
        .write_all(line.as_bytes())
        .await
        .map_err(|e| DialogueError::Broken {
            step,
            detail: e.to_string(),
        })?;
    read_reply(reader)
        .await
        .map_err(|detail| DialogueError::Broken { step, detail })
}

/// Greeting, `EHLO <ehlo_name>`, `STARTTLS`: the socket, ready for the TLS handshake, and
/// the EHLO reply.
pub async fn starttls(
    stream: TcpStream,
    ehlo_name: &str,
) -> Result<(TcpStream, Reply), DialogueError> {
    let mut reader = BufReader::new(stream);
    let greeting = read_reply(&mut reader)
        .await
        .map_err(|detail| DialogueError::Broken {
            step: "greeting",
            detail,
        })?;
    if greeting.code != 220 {
        return Err(DialogueError::Refused {
            step: "greeting",
            reply: greeting,
        });
    }
    let ehlo = command(&mut reader, "EHLO", &format!("EHLO {ehlo_name}\r\n")).await?;
    if ehlo.code != 250 {
        return Err(DialogueError::Refused {
            step: "EHLO",
            reply: ehlo,
        });
    }
    if !ehlo.offers_starttls() {
        let _ = reader.get_mut().write_all(b"QUIT\r\n").await;
        return Err(DialogueError::NoStarttls(ehlo));
    }
    let answer = command(&mut reader, "STARTTLS", "STARTTLS\r\n").await?;
    if answer.code != 220 {
        return Err(DialogueError::Refused {
            step: "STARTTLS",
            reply: answer,
        });
    }
    // RFC 3207 §6: anything the server sent after its 220 would be read as if it came
    // through TLS (the command injection of CVE-2011-0411's kind): refuse it.
    if !reader.buffer().is_empty() {
        return Err(DialogueError::Broken {
            step: "STARTTLS",
            detail: "the server sent data after its 220 reply, before the TLS handshake".into(),
        });
    }
    Ok((reader.into_inner(), ehlo))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reply(text: &str) -> Result<Reply, String> {
        let mut reader = BufReader::new(text.as_bytes());
        read_reply(&mut reader).await
    }

    #[tokio::test]
    async fn multiline_replies_and_starttls() {
        let r =
            reply("250-mail.example.test\r\n250-PIPELINING\r\n250-starttls\r\n250 SIZE 1000\r\n")
                .await
                .unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines.len(), 4);
        assert!(r.offers_starttls());
        let r = reply("250-mail.example.test\r\n250 STARTTLSX\r\n")
            .await
            .unwrap();
        assert!(!r.offers_starttls());
        // The greeting line naming STARTTLS is not the extension.
        let r = reply("250 STARTTLS\r\n").await.unwrap();
        assert!(!r.offers_starttls());
    }

    #[tokio::test]
    async fn broken_replies_are_errors() {
        assert!(reply("HTTP/1.1 400 Bad\r\n").await.is_err());
        assert!(reply("250-a\r\n").await.is_err());
        assert!(reply("250-a\r\n251 b\r\n").await.is_err());
        assert_eq!(reply("220 hi\n").await.unwrap().text(), "220 hi");
    }
}
