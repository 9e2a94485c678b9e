//! The binary's command line, run as a user runs it.

use std::process::Command;

use vigil_model::{labels, Appender, Value};

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// Tests in this binary run on parallel threads. A child forked by one test
/// shares the open files of the whole process until it execs, the data
/// directory's lock file included; so a test that holds a store open must
/// not overlap with another test's spawn. Every test takes this lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn version_prints_the_crate_version() {
    let _g = serial();
    let out = vigil().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("vigil {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn commands_not_built_yet_say_so_and_fail() {
    let _g = serial();
    for args in [
        vec!["serve"],
        vec!["check", "config", "x.yml"],
        vec!["check", "rules", "r.yml"],
    ] {
        let out = vigil().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("not available yet"), "{args:?}: {err}");
    }
}

#[test]
fn unknown_flags_are_errors() {
    let _g = serial();
    let out = vigil().arg("--no-such-flag").output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn tsdb_analyze_reports_a_data_directory() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    {
        let db = vigil_tsdb::Db::open(dir.path(), vigil_tsdb::Options::default()).unwrap();
        let mut app = db.appender();
        for i in 0..5 {
            let l = labels!("__name__" => "up", "instance" => format!("h{i}").as_str());
            app.append(None, &l, 1_000, Value::Float(1.0)).unwrap();
        }
        app.commit().unwrap();
    }
    let out = vigil()
        .args(["tsdb", "analyze", "--limit", "3"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Series (head and blocks): 5"), "{text}");
    assert!(text.contains("5 up"), "{text}");
    assert!(text.contains("WAL size:"), "{text}");

    let out = vigil()
        .args(["tsdb", "analyze"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
