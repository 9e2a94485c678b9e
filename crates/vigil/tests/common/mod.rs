//! What the binary's test files share: running `vigil`, one test at a time
//! where children are forked, plain HTTP requests, and a served `vigil`
//! that is killed when the test ends.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `vigil` binary under test.
pub fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// Tests in one binary run on parallel threads. A child forked by one test
/// shares the open files of the whole process until it execs, the data
/// directory's lock file included; so a test that holds a store open must
/// not overlap with another test's spawn. Every such test takes this lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A request without a body on a fresh connection: (status code, body).
pub fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out.get(9..12)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((code, body.to_string()))
}

/// A port nothing listens on (for the moment).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `vigil` on `port` is ready; false after 30 s.
pub fn wait_ready(port: u16) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some((200, _)) = http(port, "GET", "/-/ready") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A served `vigil`, killed when dropped so a failing test leaves nothing.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `data` with `config` (and `extra` flags) on a free port, with
/// time retention off and the lifecycle endpoints on.
pub fn serve(data: &Path, config: &Path, extra: &[String]) -> (Server, u16) {
    let port = free_port();
    let child = vigil()
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--config.file")
        .arg(config)
        .arg("--storage.tsdb.path")
        .arg(data)
        .arg("--storage.tsdb.retention.time=0")
        .arg("--web.enable-lifecycle")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    assert!(wait_ready(port), "vigil never became ready");
    (server, port)
}

/// `vigil tsdb import openmetrics -q SRC DATA`, which must succeed.
pub fn import_openmetrics(src: &Path, data: &Path) {
    let out = vigil()
        .args(["tsdb", "import", "openmetrics", "-q"])
        .arg(src)
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
