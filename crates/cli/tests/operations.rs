//! What an operator meets first: the admin token printed only once `serve` listens,
//! `mailzone token create|list|revoke` and `DELETE /api/v1/apiTokens/{id}`, log lines
//! without colour off a terminal and as JSON, `--version`, completions and man pages.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use common::{Service, client, mailzone};
use serde_json::Value;

/// A config `serve` and `records` accept, with no DNS server to reach.
fn manual_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mailzone.toml"),
        r#"
[server]
hostname = "mail.ops.test"
ipv4 = ["192.0.2.30"]
reportAddress = "mailto:postmaster"

[domain."ops.test"]
dkimManagement = { automatic = { algorithms = ["ed25519-sha256"] } }
"#,
    )
    .unwrap();
    dir
}

/// `mailzone token ARGS --state-dir DIR/state` (token commands take no config file).
fn token(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .arg("token")
        .args(args)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .output()
        .unwrap()
}

fn token_ok(dir: &Path, args: &[&str]) -> String {
    let out = token(dir, args);
    assert!(out.status.success(), "token {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn token_ids(dir: &Path) -> Vec<String> {
    let listed: Value =
        serde_json::from_str(&token_ok(dir, &["list", "--format", "json"])).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

fn status_with(service: &Service, token: &str, path: &str) -> u16 {
    client()
        .get(service.url(path))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_busy_port_does_not_burn_the_admin_token() {
    let dir = manual_config();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = mailzone(
        dir.path(),
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("mzt_"),
        "token printed before the bind: {stdout}"
    );
    assert!(token_ids(dir.path()).is_empty(), "a token was stored");
    // The next start, on a free port, prints it.
    drop(busy);
    let service = Service::start(dir.path(), None);
    assert_eq!(
        status_with(&service, &service.token, "/api/v1/domains"),
        200
    );
}

#[test]
fn tokens_are_created_listed_and_revoked_from_the_cli_and_the_api() {
    let dir = manual_config();
    let service = Service::start(dir.path(), None);
    let admin = service.token.clone();

    // A token made on the state directory while the service runs works at once.
    let made = token_ok(dir.path(), &["create", "--name", "recovery"]);
    let recovery = made.trim().to_string();
    assert!(recovery.starts_with("mzt_"), "{made}");
    assert_eq!(status_with(&service, &recovery, "/api/v1/domains"), 200);

    // The API lists ids and names, never a token or a hash.
    let (status, listed) = service.get("/api/v1/apiTokens");
    assert_eq!(status, 200, "{listed}");
    let text = listed.to_string();
    assert!(
        !text.contains("mzt_") && !text.contains(&recovery[4..]),
        "{text}"
    );
    let tokens = listed["apiTokens"].as_array().unwrap();
    // Listed by creation time (whole seconds), then id: two tokens made in the same second
    // come in either order.
    let mut names: Vec<&str> = tokens.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["admin", "recovery"]);
    let id_of = |name: &str| {
        tokens.iter().find(|t| t["name"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (recovery_id, admin_id) = (id_of("recovery"), id_of("admin"));

    // DELETE revokes: the next request with it is refused.
    let deleted = client()
        .delete(service.url(&format!("/api/v1/apiTokens/{recovery_id}")))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(status_with(&service, &recovery, "/api/v1/domains"), 401);
    let again = client()
        .delete(service.url(&format!("/api/v1/apiTokens/{recovery_id}")))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 404);
    // The last token is kept, so the API cannot lock everyone out.
    let last = client()
        .delete(service.url(&format!("/api/v1/apiTokens/{admin_id}")))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(last.status().as_u16(), 409);
    let body: Value = last.json().unwrap();
    assert_eq!(body["error"]["code"], "last_token");

    // The CLI revokes any token, the last one too (access is recovered with `create`).
    let out = token(dir.path(), &["revoke", &admin_id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(status_with(&service, &admin, "/api/v1/domains"), 401);
    let unknown = token(dir.path(), &["revoke", &admin_id]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no API token with id"));
    assert!(token_ids(dir.path()).is_empty());
    let text = token_ok(dir.path(), &["list"]);
    assert!(text.contains("no API tokens"), "{text}");
}

#[test]
fn logs_have_no_colour_off_a_terminal_and_json_lines_on_request() {
    let dir = manual_config();
    // -v writes info lines; stderr is a pipe here, so no escape sequence may appear.
    let out = mailzone(dir.path(), &["-vv", "records"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.is_empty(), "-vv wrote no log line");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );

    let out = mailzone(dir.path(), &["-vv", "--log-format", "json", "records"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = 0;
    for line in stderr.lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let at = event["timestamp"].as_str().expect("a timestamp field");
        assert!(
            humantime::parse_rfc3339_weak(at.trim_end_matches('Z')).is_ok() && at.ends_with('Z'),
            "not RFC 3339 UTC: {at}"
        );
        assert!(event["level"].is_string(), "{line}");
        lines += 1;
    }
    assert!(lines > 0, "no JSON log line");

    // --quiet: nothing on stderr, the records still on stdout.
    let out = mailzone(dir.path(), &["--quiet", "records"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ops.test."));
}

#[test]
fn version_names_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success());
    let commit = text
        .trim()
        .strip_prefix(concat!("mailzone ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text}"));
    // A checkout builds with its commit; only a build outside git says `unknown`.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(head) if head.status.success() => {
            let head = String::from_utf8_lossy(&head.stdout);
            assert!(head.starts_with(commit), "{commit} is not HEAD {head}");
        }
        _ => assert_eq!(commit, "unknown"),
    }
}

/// Every subcommand, nested ones included, as `mailzone help` lists them.
fn subcommands() -> Vec<Vec<String>> {
    fn listed(path: &[String]) -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(path)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout).to_string();
        let Some(commands) = help.split("Commands:\n").nth(1) else {
            return Vec::new();
        };
        commands
            .lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| *name != "help")
            .map(str::to_string)
            .collect()
    }
    let mut all = Vec::new();
    let mut stack = vec![Vec::new()];
    while let Some(path) = stack.pop() {
        for name in listed(&path) {
            let mut sub = path.clone();
            sub.push(name);
            stack.push(sub.clone());
            all.push(sub);
        }
    }
    assert!(all.len() >= 15, "{all:?}");
    all
}

#[test]
fn man_pages_cover_every_subcommand_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut pages = vec!["mailzone.1".to_string()];
    pages.extend(
        subcommands()
            .iter()
            .map(|p| format!("mailzone-{}.1", p.join("-"))),
    );
    for page in &pages {
        let path = dir.path().join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no {page}"));
        assert!(text.contains(".TH"), "{page} is no man page");
    }
    // groff renders them without a warning (man-db's own formatter).
    if !mailzone_testkit::require_tool("groff") {
        return;
    }
    for page in &pages {
        let rendered = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.path().join(page))
            .output()
            .unwrap();
        assert!(
            rendered.status.success() && rendered.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
    }
}

#[test]
fn bash_completion_offers_every_subcommand() {
    let script = Command::new(env!("CARGO_BIN_EXE_mailzone"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(script.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailzone.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    for command in subcommands() {
        // Ask bash's completion function what follows `mailzone <parents>`.
        let (last, parents) = command.split_last().unwrap();
        let line = format!("mailzone {} ", parents.join(" ")).replace("  ", " ");
        let words = line.split_whitespace().count();
        let probe = format!(
            "source {}; COMP_WORDS=({line} ''); COMP_CWORD={words}; COMP_LINE='{line}'; \
             COMP_POINT=${{#COMP_LINE}}; _mailzone mailzone '' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            parents.last().map(String::as_str).unwrap_or("mailzone"),
        );
        let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
        let offered = String::from_utf8_lossy(&out.stdout);
        assert!(
            offered.lines().any(|w| w == last),
            "`{line}<TAB>` does not offer {last}: {offered} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mailzone"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("token"), "{shell}");
    }
}
