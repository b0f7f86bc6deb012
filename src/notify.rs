//! Tells the service manager (systemd's sd_notify protocol) how the daemon is doing; a no-op outside one.
//!
//! Every function is fire-and-forget: without `NOTIFY_SOCKET` (a terminal,
//! tests, another supervisor) nothing is sent, and a failed send is logged at
//! debug level, because no caller could do anything better than carry on.
//! The environment is left as it is so that the daemon can notify again after
//! a reload; the notify variables are still inherited by child processes, but
//! kabar starts none.

use std::time::Duration;

use sd_notify::NotifyState;

/// Startup is finished: migrations ran and the listener is bound.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A reload has begun; call [`ready`] when it is done.
///
/// systemd 253 and newer fail a `Type=notify-reload` reload unless
/// `RELOADING=1` comes with the current `CLOCK_MONOTONIC` time in the same
/// message; older versions and `Type=notify` ignore the extra field.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => {
            tracing::debug!("cannot read the monotonic clock for RELOADING=1: {e}");
            send(&[NotifyState::Reloading]);
        }
    }
}

/// Shutdown has begun, so that systemd reports "deactivating" instead of a hang.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// The daemon is alive; send at least every [`watchdog_interval`].
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// A one-line status shown by `systemctl status`.
pub fn status(text: &str) {
    // The protocol is one `KEY=value` per line: a newline in the text would
    // end the status and let the rest pass for another assignment (READY=1…).
    let line = text.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&line)]);
}

/// How often to call [`watchdog`]: half the `WATCHDOG_USEC` the service
/// manager set, so one late tick does not get the daemon killed. `None` when
/// no watchdog is configured or it is meant for another process
/// (`WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        // A zero interval would make a ticker spin (or panic, for tokio's).
        .filter(|timeout| !timeout.is_zero())
        .map(|timeout| timeout / 2)
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("cannot notify the service manager: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::sync::{Mutex, MutexGuard};
    use std::time::Duration;

    use super::*;

    const VARS: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

    /// Serializes the tests that change the process environment.
    static ENV: Mutex<()> = Mutex::new(());

    /// Holds the environment lock, and removes the notify variables again on
    /// drop, even when the test panics, so no other test sees them.
    struct Env {
        _lock: MutexGuard<'static, ()>,
    }

    impl Env {
        fn new(vars: &[(&str, &str)]) -> Env {
            // A test that panicked while holding the lock has still restored
            // the environment (Env's drop runs), so the poison carries no risk.
            let lock = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for name in VARS {
                // SAFETY: see `set_env`.
                unsafe { std::env::remove_var(name) };
            }
            for (name, value) in vars {
                set_env(name, value);
            }
            Env { _lock: lock }
        }
    }

    impl Drop for Env {
        fn drop(&mut self) {
            for name in VARS {
                // SAFETY: see `set_env`.
                unsafe { std::env::remove_var(name) };
            }
        }
    }

    fn set_env(name: &str, value: &str) {
        // SAFETY: changing the environment is unsound only while another
        // thread reads it without std's environment lock, i.e. through libc
        // (getenv in C code, DNS resolution). In this test binary every
        // reader of the environment is Rust code going through `std::env`
        // (these tests, the config tests, chrono's TZ lookup), which takes
        // that lock, and no library test resolves host names or calls C code
        // that reads the environment. The ENV mutex keeps the tests that
        // change the environment from seeing each other's values.
        unsafe { std::env::set_var(name, value) };
    }

    /// A socket standing in for systemd's, in a fresh temporary directory.
    fn manager_socket() -> (tempfile::TempDir, UnixDatagram, String) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        // Fail instead of hanging if a message never arrives.
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        let path = path.to_str().expect("UTF-8 temp path").to_string();
        (dir, socket, path)
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 4096];
        let len = socket.recv(&mut buffer).expect("a notification");
        String::from_utf8(buffer[..len].to_vec()).expect("UTF-8 notification")
    }

    #[test]
    fn each_call_sends_one_datagram_to_notify_socket() {
        let (_dir, socket, path) = manager_socket();
        let _env = Env::new(&[("NOTIFY_SOCKET", &path)]);
        ready();
        assert_eq!(receive(&socket), "READY=1\n");
        status("polling 3 feeds");
        assert_eq!(receive(&socket), "STATUS=polling 3 feeds\n");
        watchdog();
        assert_eq!(receive(&socket), "WATCHDOG=1\n");
        stopping();
        assert_eq!(receive(&socket), "STOPPING=1\n");
        // Still set: a reload can notify again after the first READY=1.
        assert_eq!(std::env::var("NOTIFY_SOCKET").as_deref(), Ok(path.as_str()));
        ready();
        assert_eq!(receive(&socket), "READY=1\n");
    }

    #[test]
    fn reloading_carries_the_monotonic_time_in_the_same_datagram() {
        let (_dir, socket, path) = manager_socket();
        let _env = Env::new(&[("NOTIFY_SOCKET", &path)]);
        reloading();
        let message = receive(&socket);
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 2, "{message:?}");
        assert_eq!(lines[0], "RELOADING=1");
        let usec = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {message:?}"));
        assert!(
            usec.parse::<u64>().is_ok_and(|n| n > 0),
            "MONOTONIC_USEC={usec}"
        );
    }

    #[test]
    fn a_newline_in_the_status_cannot_forge_another_assignment() {
        let (_dir, socket, path) = manager_socket();
        let _env = Env::new(&[("NOTIFY_SOCKET", &path)]);
        status("feed x\nREADY=1");
        assert_eq!(receive(&socket), "STATUS=feed x READY=1\n");
    }

    #[test]
    fn without_notify_socket_nothing_is_sent_and_nothing_panics() {
        let _env = Env::new(&[]);
        ready();
        reloading();
        status("idle");
        watchdog();
        stopping();
        assert_eq!(watchdog_interval(), None);
    }

    #[test]
    fn an_unreachable_socket_is_not_an_error_for_the_caller() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let missing = dir.path().join("gone.sock");
        let _env = Env::new(&[("NOTIFY_SOCKET", missing.to_str().expect("UTF-8"))]);
        ready();
        watchdog();
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_this_process_only() {
        let own = std::process::id().to_string();
        let other = (std::process::id() + 1).to_string();
        for (vars, expected) in [
            (vec![("WATCHDOG_USEC", "60000000")], Some(30)),
            (
                vec![
                    ("WATCHDOG_USEC", "60000000"),
                    ("WATCHDOG_PID", own.as_str()),
                ],
                Some(30),
            ),
            (
                vec![
                    ("WATCHDOG_USEC", "60000000"),
                    ("WATCHDOG_PID", other.as_str()),
                ],
                None,
            ),
            (vec![("WATCHDOG_USEC", "0")], None),
            (vec![("WATCHDOG_USEC", "soon")], None),
            (vec![], None),
        ] {
            let _env = Env::new(&vars);
            assert_eq!(
                watchdog_interval(),
                expected.map(Duration::from_secs),
                "{vars:?}"
            );
        }
    }
}
