//! A private Postfix (Debian's `postfix` package) for the live TLS tests: one `master`
//! process in a temporary directory — its own `config_directory` (main.cf, master.cf),
//! `queue_directory` and `data_directory` — with one `smtpd` listener per [`Listener`] on
//! free 127.0.0.1 ports, each with its own certificate and TLS setting (STARTTLS, implicit
//! TLS as on port 465, TLS off, or only TLS 1.0/1.1). It never touches the system
//! instance (`/etc/postfix`) nor port 25, receives no mail (no local delivery, no queue
//! manager) and logs to `maillog` in its directory ([`Postfix::log`]).
//!
//! Postfix's `master` must start as root (it is, here and in CI; the smtpd processes drop
//! to the `postfix` user the package creates). `master -d` stays in the foreground in its
//! own process group: dropping the [`Postfix`] sends SIGTERM, and master stops its
//! children; if the test process dies, the kernel kills master (`PR_SET_PDEATHSIG`).
//! Ready in ≈ 1 s (master's start), so a test starts one instance with every listener it
//! needs.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, poll_until, tool_path};

/// Debian's place for Postfix's daemons (`postconf -d daemon_directory`).
const MASTER: &str = "/usr/lib/postfix/sbin/master";

/// The programs needed, for `require_tools`.
pub const POSTFIX_TOOLS: &[&str] = &["postfix", MASTER];

/// How a listener does TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerTls {
    /// Offers STARTTLS (`smtpd_tls_security_level = may`), as port 25 and 587.
    Starttls,
    /// TLS from the first byte (`smtpd_tls_wrappermode = yes`), as port 465.
    Implicit,
    /// No TLS at all (`smtpd_tls_security_level = none`): EHLO lists no STARTTLS.
    Off,
    /// STARTTLS offered, but the handshake allows only TLS 1.0 and 1.1.
    OldVersionsOnly,
}

/// One `smtpd` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub tls: ListenerTls,
    /// The private key followed by the certificate chain (leaf first), PEM; needed unless
    /// `tls` is [`ListenerTls::Off`].
    pub key_and_chain_pem: Option<String>,
}

/// A running private Postfix.
pub struct Postfix {
    /// The port of each listener, in the order given.
    pub ports: Vec<u16>,
    child: Child,
    dir: tempfile::TempDir,
}

impl Postfix {
    /// Starts master with `listeners`; returns once every listener accepts connections.
    pub fn start(listeners: &[Listener]) -> io::Result<Postfix> {
        let dir = tempfile::Builder::new()
            .prefix("mailzone-postfix")
            .tempdir()?;
        let root = dir.path();
        let (uid, gid) = user_ids("postfix")?;
        let postdrop = group_id("postdrop")?;
        for sub in [
            "etc",
            "data",
            "queue",
            "queue/pid",
            "queue/private",
            "queue/public",
        ] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        // The smtpd processes run as `postfix` and read nothing outside these.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::chown(root.join("data"), Some(uid), Some(gid))?;
        std::os::unix::fs::chown(root.join("queue/private"), Some(uid), Some(gid))?;
        std::os::unix::fs::chown(root.join("queue/public"), Some(uid), Some(postdrop))?;
        std::fs::set_permissions(
            root.join("queue/private"),
            std::fs::Permissions::from_mode(0o700),
        )?;
        std::fs::set_permissions(
            root.join("queue/public"),
            std::fs::Permissions::from_mode(0o710),
        )?;

        let ports: Vec<u16> = listeners.iter().map(|_| free_port()).collect();
        let mut master_cf = String::from(
            "tlsmgr unix - - n 1000? 1 tlsmgr\n\
             postlog unix-dgram n - n - 1 postlogd\n",
        );
        for (i, (listener, port)) in listeners.iter().zip(&ports).enumerate() {
            master_cf.push_str(&format!("127.0.0.1:{port} inet n - n - - smtpd"));
            if let Some(pem) = &listener.key_and_chain_pem {
                let file = root.join(format!("etc/listener{i}.pem"));
                std::fs::write(&file, pem)?;
                master_cf.push_str(&format!(" -o smtpd_tls_chain_files={}", file.display()));
            }
            master_cf.push_str(match listener.tls {
                ListenerTls::Starttls => "",
                ListenerTls::Implicit => " -o smtpd_tls_wrappermode=yes",
                ListenerTls::Off => " -o smtpd_tls_security_level=none",
                ListenerTls::OldVersionsOnly => {
                    " -o smtpd_tls_protocols=>=TLSv1,<=TLSv1.1 -o smtpd_tls_ciphers=medium -o tls_medium_cipherlist=DEFAULT:@SECLEVEL=0"
                }
            });
            master_cf.push('\n');
        }
        std::fs::write(root.join("etc/master.cf"), master_cf)?;
        std::fs::write(root.join("etc/main.cf"), main_cf(root))?;

        let mut command = Command::new(tool_path(MASTER).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "postfix missing: run scripts/test")
        })?);
        command
            .arg("-c")
            .arg(root.join("etc"))
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = crate::process::spawn(command)?;
        let mut postfix = Postfix { ports, child, dir };
        let ready = poll_until(Duration::from_secs(10), || {
            postfix
                .ports
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        });
        if !ready {
            let exited = postfix.child.try_wait().ok().flatten();
            return Err(io::Error::other(format!(
                "Postfix did not listen within 10 s (exit: {exited:?}); log:\n{}",
                postfix.log()
            )));
        }
        Ok(postfix)
    }

    /// Postfix's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The instance's directory (config in `etc/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // SIGTERM: master stops its process group (the smtpd children) and exits.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill with a PID we spawned and have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let stopped = poll_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// main.cf of an instance living in `root`: receives nothing for delivery, logs to
/// `root/maillog`, no notices to a postmaster.
fn main_cf(root: &Path) -> String {
    let root = root.display();
    format!(
        "compatibility_level = 3.6\n\
         queue_directory = {root}/queue\n\
         data_directory = {root}/data\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         inet_interfaces = loopback-only\n\
         inet_protocols = ipv4\n\
         myhostname = mail.example.test\n\
         mydestination =\n\
         alias_maps =\n\
         alias_database =\n\
         local_recipient_maps =\n\
         notify_classes =\n\
         maillog_file_prefixes = {root}\n\
         maillog_file = {root}/maillog\n\
         smtpd_banner = $myhostname ESMTP\n\
         smtpd_tls_security_level = may\n\
         smtpd_tls_loglevel = 1\n"
    )
}

/// The uid and gid of `user` (from /etc/passwd).
fn user_ids(user: &str) -> io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user) && f.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no user {user}")))
}

/// The gid of `group` (from /etc/group).
fn group_id(group: &str) -> io::Result<u32> {
    let groups = std::fs::read_to_string("/etc/group")?;
    groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&group) && f.len() > 2)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group {group}")))
}

/// Whether this process may run Postfix's master (root).
pub fn postfix_usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !crate::require_tools(POSTFIX_TOOLS) {
        return false;
    }
    root || crate::missing("root (Postfix's master must start as root)")
}
