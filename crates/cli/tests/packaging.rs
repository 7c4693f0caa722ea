//! The packaging under `packaging/` and the `Dockerfile`, checked by the tools that consume
//! them: systemd's own analyzer on the unit files (`verify`, and the `security` exposure
//! score docs/operations.md records), the Debian package built by cargo-deb, judged by
//! lintian, installed with dpkg, run and removed again, the NixOS files parsed by
//! `nix-instantiate`, and the Dockerfile parsed by BuildKit's parser.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailzone_testkit::{require_tool, require_tools};

/// Exposure score (`systemd-analyze security`, 0 safe … 10 exposed) every service must stay
/// under.
const MAX_EXPOSURE: f64 = 2.0;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn systemd_dir() -> PathBuf {
    repo().join("packaging/systemd")
}

/// The unit files of `packaging/systemd`, sorted.
fn unit_files() -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(systemd_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "service" || ext == "timer")
        })
        .collect();
    units.sort();
    units
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `systemd-analyze verify` on the units as installed, except that `ExecStart=` runs the
/// binary under test (verify checks that the command exists and is executable).
#[test]
fn units_verify() {
    if !require_tool("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut copies = Vec::new();
    for unit in unit_files() {
        let text = std::fs::read_to_string(&unit)
            .unwrap()
            .replace("/usr/bin/mailzone", env!("CARGO_BIN_EXE_mailzone"));
        let copy = dir.path().join(unit.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        copies.push(copy);
    }
    assert_eq!(copies.len(), 5, "{copies:?}");
    let output = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&copies)
        // The timers find their services beside them.
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display())));
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        !complaints.contains("mailzone"),
        "systemd-analyze verify: {complaints}"
    );
}

/// The exposure score of a unit file (`systemd-analyze security --offline=true`).
fn exposure(unit: &Path) -> f64 {
    let output = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit));
    let text = stdout(&output);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score in: {text}"));
    let score = line.split(':').nth(1).unwrap().split_whitespace().next();
    score.unwrap().parse().unwrap()
}

#[test]
fn every_service_exposure_is_at_most_2_and_documented() {
    if !require_tool("systemd-analyze") {
        return;
    }
    let operations = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    for unit in unit_files()
        .iter()
        .filter(|u| u.extension().unwrap() == "service")
    {
        let score = exposure(unit);
        let name = unit.file_name().unwrap().to_str().unwrap();
        assert!(score <= MAX_EXPOSURE, "{name}: exposure {score}");
        let recorded = format!("Overall exposure level for {name}: {score:.1}");
        assert!(
            operations.contains(&recorded),
            "docs/operations.md should record \"{recorded}\""
        );
    }
}

/// The `Type=notify` unit sends what the service implements (systemd_notify.rs proves the
/// binary's side) and reloads with SIGHUP.
#[test]
fn service_unit_matches_what_serve_implements() {
    let unit = std::fs::read_to_string(systemd_dir().join("mailzone.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/mailzone serve",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=mailzone",
        "User=mailzone",
        "UMask=0077",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.lines().any(|l| l == line), "mailzone.service: {line}");
    }
    assert!(unit.lines().any(|l| l.starts_with("WatchdogSec=")));
}

// --- Debian package -------------------------------------------------------------------------

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout) == "install ok installed")
}

fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Purges the package when the test ends (passed or not), and takes away the user and the
/// state directory the package left, when the machine did not have them before.
struct Installed {
    user_existed: bool,
    state_existed: bool,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "mailzone"]).output();
        if !self.user_existed {
            let _ = Command::new("userdel").arg("mailzone").output();
            let _ = Command::new("groupdel").arg("mailzone").output();
        }
        if !self.state_existed {
            let _ = std::fs::remove_dir_all("/var/lib/mailzone");
        }
    }
}

/// The .deb of the binary under test, built by `packaging/deb/build.sh` (cargo-deb), in
/// `out`.
fn build_deb(out: &Path) -> PathBuf {
    let build = run(Command::new("bash")
        .arg(repo().join("packaging/deb/build.sh"))
        .args([
            "--fast",
            "--binary",
            env!("CARGO_BIN_EXE_mailzone"),
            "--output",
        ])
        .arg(out));
    eprintln!("{}", String::from_utf8_lossy(&build.stderr));
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs[0].clone()
}

#[test]
fn debian_package_is_lintian_clean_installs_runs_and_removes() {
    if !require_tools(&["cargo-deb", "dpkg", "lintian", "systemd-analyze"]) {
        return;
    }
    if !is_root() {
        eprintln!("skipping: dpkg -i needs root");
        return;
    }
    if package_installed("mailzone") {
        eprintln!("skipping: a mailzone package is installed here; the test does not replace it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());

    let contents = stdout(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    for path in [
        "./usr/bin/mailzone",
        "./usr/lib/systemd/system/mailzone.service",
        "./usr/lib/systemd/system/mailzone-apply.timer",
        "./usr/lib/systemd/system/mailzone-check.timer",
        "./usr/share/doc/mailzone/examples/mailzone.toml",
        "./usr/share/doc/mailzone/copyright",
    ] {
        assert!(
            contents.contains(path),
            "{path} not in the package:\n{contents}"
        );
    }
    let with_manpages = contents.contains("./usr/share/man/man1/mailzone.1.gz");
    if with_manpages {
        for path in [
            "./usr/share/bash-completion/completions/mailzone",
            "./usr/share/zsh/vendor-completions/_mailzone",
            "./usr/share/fish/vendor_completions.d/mailzone.fish",
        ] {
            assert!(contents.contains(path), "{path} not in the package");
        }
    }

    // lintian: no error and no warning (overrides, each with its reason, are in the package).
    run(Command::new("lintian")
        .args(["--fail-on", "error,warning", "--no-tag-display-limit"])
        .arg(&deb));

    let _installed = Installed {
        user_existed: user_exists("mailzone"),
        state_existed: Path::new("/var/lib/mailzone").exists(),
    };
    run(Command::new("dpkg").arg("-i").arg(&deb));

    let version = stdout(&run(Command::new("/usr/bin/mailzone").arg("--version")));
    assert!(
        version.starts_with(&format!("mailzone {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    // The installed units, with the installed binary (and man pages when packaged).
    let units = [
        "mailzone.service",
        "mailzone-apply.service",
        "mailzone-apply.timer",
        "mailzone-check.service",
        "mailzone-check.timer",
    ]
    .map(|u| format!("/usr/lib/systemd/system/{u}"));
    let man = if with_manpages {
        "--man=yes"
    } else {
        "--man=no"
    };
    let verified = run(Command::new("systemd-analyze")
        .args(["verify", man])
        .args(&units));
    let complaints = String::from_utf8_lossy(&verified.stderr);
    assert!(!complaints.contains("mailzone"), "{complaints}");

    // The system user and its private state directory.
    let passwd = stdout(&run(Command::new("getent").args(["passwd", "mailzone"])));
    assert!(
        passwd
            .trim_end()
            .ends_with(":/var/lib/mailzone:/usr/sbin/nologin"),
        "{passwd}"
    );
    let stat = stdout(&run(Command::new("stat")
        .args(["-c", "%U %a"])
        .arg("/var/lib/mailzone")));
    assert_eq!(stat.trim(), "mailzone 700");

    // The example config the package ships is one mailzone accepts.
    run(Command::new("/usr/bin/mailzone")
        .args(["records", "--config"])
        .arg("/usr/share/doc/mailzone/examples/mailzone.toml")
        .arg("--state-dir")
        .arg(dir.path().join("state")));

    run(Command::new("dpkg").args(["--purge", "mailzone"]));
    assert!(!Path::new("/usr/bin/mailzone").exists());
    assert!(!Path::new("/usr/lib/systemd/system/mailzone.service").exists());
}

// --- NixOS -----------------------------------------------------------------------------------

#[test]
fn nixos_module_and_package_parse() {
    if !require_tool("nix-instantiate") {
        return;
    }
    let dir = repo().join("packaging/nixos");
    for file in ["module.nix", "package.nix"] {
        run(Command::new("nix-instantiate")
            .arg("--parse")
            .arg(dir.join(file)));
    }
    // Each file is a function of the arguments NixOS (module) and callPackage (package)
    // pass; evaluating that needs no nixpkgs.
    for (file, args) in [
        ("module.nix", r#"[ "config" "lib" "pkgs" ]"#),
        ("package.nix", r#"[ "lib" "rustPlatform" ]"#),
    ] {
        let expr = format!(
            "builtins.attrNames (builtins.functionArgs (import {}))",
            dir.join(file).display()
        );
        let output = run(Command::new("nix-instantiate").args(["--eval", "--strict", "-E", &expr]));
        assert_eq!(stdout(&output).trim(), args, "{file}");
    }
}

// --- Container -------------------------------------------------------------------------------

/// The Dockerfile's instructions, parsed by BuildKit's own parser (the `dockerfile` Python
/// package wraps it): (instruction, flags and arguments) per line.
fn dockerfile_instructions() -> Option<Vec<(String, Vec<String>)>> {
    let python = common::venv_python_with("dockerfile")?;
    let script = "import dockerfile, json, sys\n\
                  print(json.dumps([[c.cmd, list(c.flags + c.value)] for c in dockerfile.parse_file(sys.argv[1])]))";
    let output = run(Command::new(python)
        .args(["-c", script])
        .arg(repo().join("Dockerfile")));
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_a_state_volume() {
    let Some(instructions) = dockerfile_instructions() else {
        return;
    };
    let all = |cmd: &str| -> Vec<Vec<String>> {
        instructions
            .iter()
            .filter(|(c, _)| c.eq_ignore_ascii_case(cmd))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let froms = all("FROM");
    assert_eq!(froms.len(), 2, "a build and a run stage: {froms:?}");
    assert!(froms[0].iter().any(|v| v.eq_ignore_ascii_case("AS")));
    assert!(froms[1][0].starts_with("debian:") && froms[1][0].ends_with("-slim"));
    let copies = all("COPY");
    assert!(
        copies.iter().any(|c| c.iter().any(|a| a == "--from=build")),
        "the binary comes from the build stage: {copies:?}"
    );
    // The last USER of the final stage is not root.
    let user = all("USER").pop().expect("a USER instruction")[0].clone();
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );
    assert_eq!(all("VOLUME"), vec![vec!["/var/lib/mailzone".to_string()]]);
    let env = all("ENV").concat();
    assert!(
        env.windows(2)
            .any(|w| w[0] == "MAILZONE_STATE_DIR" && w[1] == "/var/lib/mailzone"),
        "{env:?}"
    );
    assert_eq!(
        all("ENTRYPOINT"),
        vec![vec!["/usr/bin/mailzone".to_string()]]
    );
    assert_eq!(all("CMD"), vec![vec!["serve", "--listen", "0.0.0.0:8080"]]);

    // Every path the build context must hold is not excluded by .dockerignore.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target/"));
    for needed in ["crates", "Cargo.toml", "Cargo.lock", "packaging"] {
        assert!(!ignore.lines().any(|l| l.trim_end_matches('/') == needed));
    }
}
