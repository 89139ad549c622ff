//! systemd's readiness protocol (sd_notify(3)), without libsystemd: a
//! service started with `Type=notify` finds in `$NOTIFY_SOCKET` the address
//! of a unix datagram socket, and systemd counts it as started once
//! `READY=1` arrives there (so units ordered after it, and `systemctl
//! start`, wait for the broker to take clients, not merely for the process
//! to exist). Each message is newline-separated `KEY=value` lines in one
//! datagram. Without `$NOTIFY_SOCKET` (not run by systemd) nothing is sent.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (e.g. `"READY=1\nSTATUS=..."`) to the socket in
/// `$NOTIFY_SOCKET`. Returns whether there was one to send to.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(address) = std::env::var_os(NOTIFY_SOCKET) else { return Ok(false) };
    let address = address.as_bytes();
    let socket = UnixDatagram::unbound()?;
    let sent = match address {
        // A name in Linux's abstract namespace: '@' stands for the leading NUL.
        #[cfg(target_os = "linux")]
        [b'@', name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &address)?
        }
        [b'/', ..] => socket.send_to(state.as_bytes(), std::ffi::OsStr::from_bytes(address))?,
        _ => {
            let shown = String::from_utf8_lossy(address);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{NOTIFY_SOCKET}={shown:?} is neither an absolute path nor an abstract name (@...)"),
            ));
        }
    };
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "the notification was cut short"));
    }
    Ok(true)
}
