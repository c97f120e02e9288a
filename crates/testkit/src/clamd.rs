//! A real ClamAV daemon for tests: `clamd` from the Debian package
//! `clamav-daemon` (installed by `.ci/run`), started with a configuration
//! of its own in a temporary directory — a Unix socket, a loopback TCP
//! port, and a signature database holding one signature we wrote for the
//! EICAR test string (the official databases need a download that is not
//! available here; ClamAV loads any `.ndb` it finds).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The EICAR anti-virus test file (68 bytes): harmless, and detected by
/// every scanner — here by [`SIGNATURE`].
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The name clamd reports for [`EICAR`] (ours; unofficial signatures get
/// the suffix).
pub const SIGNATURE: &str = "Drehscheibe.Test.EICAR.UNOFFICIAL";

/// A running `clamd`; killed when dropped.
pub struct ClamdProcess {
    child: Option<Child>,
    binary: &'static str,
    conf: PathBuf,
    dir: tempfile::TempDir,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// Its TCP address (`127.0.0.1:<port>`).
    pub tcp: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ClamdProcess {
    /// Start clamd accepting streams of up to 300 MB.
    pub fn start() -> Self {
        Self::start_with("300M")
    }

    /// Start clamd with `StreamMaxLength` = `stream_max` (e.g. `"1M"`);
    /// returns once it answers `PING`.
    pub fn start_with(stream_max: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).unwrap();
        let hex: String = EICAR.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            db.join("drehscheibe-test.ndb"),
            format!("Drehscheibe.Test.EICAR:0:*:{hex}\n"),
        )
        .unwrap();
        let socket = dir.path().join("clamd.sock");
        let port = free_port();
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "LocalSocket {socket}\nTCPSocket {port}\nTCPAddr 127.0.0.1\n\
                 DatabaseDirectory {db}\nForeground yes\nLogFile {log}\n\
                 StreamMaxLength {stream_max}\nMaxScanSize 1000M\nMaxFileSize 1000M\n\
                 SelfCheck 0\n",
                socket = socket.display(),
                db = db.display(),
                log = dir.path().join("clamd.log").display(),
            ),
        )
        .unwrap();
        let binary = ["/usr/sbin/clamd", "/usr/bin/clamd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("clamd");
        let mut me = Self {
            child: None,
            binary,
            conf,
            dir,
            socket,
            tcp: format!("127.0.0.1:{port}"),
        };
        me.restart();
        me
    }

    /// Start it again after [`ClamdProcess::stop`] (same socket, port and
    /// signatures); returns once it answers `PING`.
    pub fn restart(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.socket);
        let binary = self.binary;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary}: {e} (install the Debian package clamav-daemon; .ci/run does)")
            });
        self.child = Some(child);
        let me = self;
        let end = Instant::now() + Duration::from_secs(90);
        while !me.pings() {
            if let Some(status) = me.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("clamd exited ({status}) before answering:\n{}", me.log());
            }
            assert!(
                Instant::now() < end,
                "clamd did not answer within 90 s:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"zPING\0").is_err() {
            return false;
        }
        let mut answer = [0u8; 5];
        s.read_exact(&mut answer).is_ok() && &answer == b"PONG\0"
    }

    /// The process id (for its memory figures), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// clamd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }

    /// Kill it (the scanner goes down under the hub).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ClamdProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
