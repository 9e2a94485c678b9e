//! Build information for `/api/v1/status/buildinfo`: the git revision,
//! branch and commit date of the source, the compiler version and who
//! built it. Each is "unknown" when it cannot be found (a source tarball,
//! no git).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then_some(())?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    // Rebuild when the checked-out commit moves; only name files that
    // exist, since a missing one makes cargo rerun this script every build.
    for p in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-env-changed=VIGIL_BUILD_USER");
    let unknown = || "unknown".to_string();
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(unknown);
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(unknown);
    // The commit date rather than the wall clock, so builds of one commit
    // agree; in Prometheus's format (Go layout 20060102-15:04:05).
    let date = git(&[
        "log",
        "-1",
        "--format=%cd",
        "--date=format-local:%Y%m%d-%H:%M:%S",
    ])
    .unwrap_or_else(unknown);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(unknown);
    let user = std::env::var("VIGIL_BUILD_USER").unwrap_or_else(|_| {
        let name = std::env::var("USER").unwrap_or_else(|_| unknown());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| unknown());
        format!("{name}@{host}")
    });
    println!("cargo:rustc-env=VIGIL_BUILD_REVISION={revision}");
    println!("cargo:rustc-env=VIGIL_BUILD_BRANCH={branch}");
    println!("cargo:rustc-env=VIGIL_BUILD_DATE={date}");
    println!("cargo:rustc-env=VIGIL_BUILD_RUSTC={rustc_version}");
    println!("cargo:rustc-env=VIGIL_BUILD_USER={user}");
}
