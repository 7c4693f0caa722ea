//! Finding the external programs (`knotd`, `named`, `kdig`, `knsupdate`) and the
//! skip-or-fail policy of the test suite (`MAILZONE_REQUIRE_TOOLS`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Directories searched after `PATH`: the servers live in `sbin`, which is not on the
/// `PATH` of every user.
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];

/// The path of the executable `name` (searched in `PATH`, then the `sbin` directories),
/// or `None` when it is not installed. A `name` containing `/` is checked as a path.
pub fn tool_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .chain(postgres_bin_dirs())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Debian keeps PostgreSQL's server programs (`initdb`, `postgres`) in
/// `/usr/lib/postgresql/<version>/bin`, off the `PATH`: newest version first.
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, dir)| dir).collect()
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether the suite runs with `MAILZONE_REQUIRE_TOOLS=1` (as `scripts/test` does).
fn tools_required() -> bool {
    std::env::var("MAILZONE_REQUIRE_TOOLS").is_ok_and(|value| value.trim() == "1")
}

/// Whether the tool `name` is installed. When it is not: panics with
/// "`name` missing: run scripts/test" if `MAILZONE_REQUIRE_TOOLS=1`, otherwise prints a
/// skip message on stderr and returns `false` (the caller returns early: a skipped test).
///
/// ```no_run
/// if !mailzone_testkit::require_tool("knotd") {
///     return;
/// }
/// ```
pub fn require_tool(name: &str) -> bool {
    require_tools(&[name])
}

/// [`require_tool`] for several tools at once; the message names every missing one.
pub fn require_tools(names: &[&str]) -> bool {
    let absent: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| tool_path(name).is_none())
        .collect();
    if absent.is_empty() {
        return true;
    }
    missing(&absent.join(", "))
}

/// A missing test dependency (`what`, e.g. "knotd" or "the venv's Python with dkimpy"):
/// panics under `MAILZONE_REQUIRE_TOOLS=1`; otherwise says on stderr that the test is
/// skipped and why, and returns `false` for the caller to return early.
pub fn missing(what: &str) -> bool {
    if tools_required() {
        panic!("{what} missing: run scripts/test");
    }
    eprintln!(
        "skipping: {what} missing (scripts/test installs it; with MAILZONE_REQUIRE_TOOLS=1 this fails)"
    );
    false
}

/// The test venv's Python (`MAILZONE_TEST_PYTHON`, else the repository's
/// `.venv-test/bin/python` that scripts/test builds), if it can import every module of
/// `modules`; otherwise [`missing`] and `None`.
pub fn test_python(modules: &[&str]) -> Option<PathBuf> {
    let python = venv_python();
    let imports = std::process::Command::new(&python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output();
    if matches!(imports, Ok(o) if o.status.success()) {
        return Some(python);
    }
    missing(&format!(
        "{} with {} (or set MAILZONE_TEST_PYTHON)",
        python.display(),
        modules.join(", ")
    ));
    None
}

/// A program the test venv installs beside its Python (`st` of schemathesis), or
/// [`missing`] and `None`.
pub fn test_venv_program(name: &str) -> Option<PathBuf> {
    let program = venv_python().with_file_name(name);
    if program.is_file() {
        return Some(program);
    }
    missing(&format!(
        "{} (or set MAILZONE_TEST_PYTHON)",
        program.display()
    ));
    None
}

fn venv_python() -> PathBuf {
    std::env::var_os("MAILZONE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/python")
        })
}

/// The path of `name`, or an error naming the missing tool (for the functions returning
/// `io::Result`).
pub(crate) fn tool_or_err(name: &str) -> std::io::Result<PathBuf> {
    tool_path(name).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name} missing: run scripts/test"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(tool_path("sh").is_some());
        assert!(tool_path("/bin/sh").is_some());
        assert!(tool_path("mailzone-no-such-tool-here").is_none());
    }
}
