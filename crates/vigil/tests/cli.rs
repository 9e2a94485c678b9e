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
        vec!["serve", "--config.file", "x.yml"],
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

#[test]
fn serve_answers_health_checks_and_stops_on_sigterm() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = vigil()
        .args([
            "serve",
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--storage.tsdb.path")
        .arg(dir.path().join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut ready = false;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SIGTERM: a graceful stop with status 0.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(ready, "the server never became ready");
    assert!(status.success(), "{status:?}");
    assert!(dir.path().join("data").join("wal").is_dir());
}
