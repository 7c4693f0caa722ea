//! Cloud DNS providers that cannot be reached from here, replayed on loopback: `mailzone
//! apply` runs as in production (its HTTP client reads `HTTPS_PROXY` and `SSL_CERT_FILE`)
//! and talks to the provider's real API host through the kit's [`ProviderReplay`], which
//! answers in the shapes the provider documents and keeps the zone in memory. One module per
//! provider; each checks the requests sent (method, path, query, credential), the zone after
//! a publish (mailzone's records added, foreign records at the same names left alone), a
//! second run in sync, a 429 with `Retry-After` waited out before the retry, and a refused
//! credential ending the run with the provider's words and without the secret.

mod cloudflare;
mod desec;
mod digitalocean;
mod hetzner;

use std::path::Path;
use std::process::{Command, Output};

use mailzone_testkit::{ProviderReplay, ReplayRequest};

/// The domain's config, published through `[dnsServer.<server>]` (`server_table`: its keys,
/// one per line) with the DMARC policy `dmarc_policy`.
pub fn config(zone: &str, server: &str, server_table: &str, dmarc_policy: &str) -> String {
    format!(
        r#"
[server]
hostname = "mail.{zone}"
ipv4 = ["192.0.2.10"]

[dnsServer.{server}]
{server_table}
propagationDelay = "0s"

[domain."{zone}"]
dmarc = {{ policy = "{dmarc_policy}" }}
caa = {{ issuers = ["letsencrypt.org"] }}
dkimManagement = {{ manual = {{ keys = [] }} }}
dnsManagement = {{ automatic = {{ dnsServer = "{server}", publishRecords = ["mx", "spf", "dmarc", "caa", "address"] }} }}
"#
    )
}

/// One replayed provider's fixed facts: the zone, the DNS server kind, the environment
/// variable its secret is read from (`<secret>Env`), and more keys of its table.
pub struct Replayed {
    pub zone: &'static str,
    pub kind: &'static str,
    /// The secret setting's name (`apiToken`, `authToken`, …).
    pub secret: &'static str,
    pub env: &'static str,
    pub more: &'static str,
}

impl Replayed {
    /// The config with the DMARC policy `dmarc_policy`.
    pub fn config(&self, dmarc_policy: &str) -> String {
        let table = format!(
            // The zone's NS are the provider's: not polled from a test.
            "kind = \"{}\"\n{}Env = \"{}\"\nauthoritativeServers = []\n{}",
            self.kind, self.secret, self.env, self.more
        );
        config(self.zone, self.kind, &table, dmarc_policy)
    }

    /// [`mailzone`] with the secret `token` in the environment.
    pub fn run(&self, dir: &Path, replay: &ProviderReplay, token: &str, args: &[&str]) -> Output {
        mailzone(dir, replay, &[(self.env, token)], args)
    }
}

/// Runs `mailzone ARGS --config DIR/mailzone.toml --state-dir DIR/state` through the replay,
/// with `env` added (the credential's variable).
pub fn mailzone(
    dir: &Path,
    replay: &ProviderReplay,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(args)
        .arg("--config")
        .arg(dir.join("mailzone.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .envs(replay.env())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// stdout then stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// In sync after an apply: `plan --detailed-exitcode` exits 0 and a second apply only
/// reads. `run` runs mailzone with the given arguments against `replay`.
pub fn assert_in_sync(run: impl Fn(&[&str]) -> Output, replay: &ProviderReplay) {
    let plan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let before = replay.requests().len();
    let again = run(&["apply"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        replay.requests()[before..]
            .iter()
            .all(|r| r.method == "GET"),
        "a second apply only reads"
    );
}

/// The requests other than GETs since the `before`th request.
pub fn writes_since(replay: &ProviderReplay, before: usize) -> Vec<ReplayRequest> {
    replay.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .cloned()
        .collect()
}

/// Publishes (config and state in `dir`) with DMARC `p=reject`, then changes the policy to quarantine with `throttle`
/// called just before the second run (it arms the replay's 429 for the next write).
/// Both runs must succeed; returns the second run's writes (all but GETs), in order.
pub fn throttled_policy_change(
    provider: &Replayed,
    dir: &Path,
    replay: &ProviderReplay,
    token: &str,
    throttle: impl FnOnce(),
) -> Vec<ReplayRequest> {
    let config_file = dir.join("mailzone.toml");
    std::fs::write(&config_file, provider.config("reject")).unwrap();
    let apply = provider.run(dir, replay, token, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    std::fs::write(&config_file, provider.config("quarantine")).unwrap();
    throttle();
    let before = replay.requests().len();
    let apply = provider.run(dir, replay, token, &["apply"]);
    assert!(apply.status.success(), "{}", text(&apply));
    writes_since(replay, before)
}
