//! The AWS emulator (moto, from the project's .venv) as a child process on a free port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A moto server of our own, stopped when dropped.
pub struct Emulator {
    child: Child,
    /// e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

/// The emulator tests running at the same time share, while any of them holds it.
static SHARED: Mutex<Weak<Emulator>> = Mutex::new(Weak::new());

impl Emulator {
    /// Starts `scripts/emulator.py` from the project's venv on a free port and waits until it
    /// answers.
    pub fn start() -> Self {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/test (or scripts/emulator once) to install the emulator",
            python.display()
        );
        let port = free_port();
        let mut child = Command::new(python)
            .arg(root.join("scripts/emulator.py"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the emulator starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            assert!(
                Instant::now() < deadline,
                "the emulator did not start within 60 s"
            );
            match lines.next() {
                Some(Ok(line)) if line.contains("emulator listening") => break,
                Some(_) => continue,
                None => panic!("the emulator exited before it was ready"),
            }
        }
        // Keep draining its stdout so a chatty emulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The running shared emulator, or a new one: for tests whose resources have unique names
    /// and need no emulator of their own.
    pub fn shared() -> Arc<Self> {
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(emulator) = shared.upgrade() {
            return emulator;
        }
        let emulator = Arc::new(Self::start());
        *shared = Arc::downgrade(&emulator);
        emulator
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
