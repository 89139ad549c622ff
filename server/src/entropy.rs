//! The seed of the engine's randomness (cluster ids, topic ids), drawn once
//! from the operating system at start. The engine only ever sees the seeded
//! generator, so that the simulator can hand it a fixed seed instead.

use std::io;

/// Eight bytes from the kernel's CSPRNG (`getrandom(2)`), which blocks only
/// until the pool is first initialised at boot.
pub fn os_seed() -> io::Result<u64> {
    let mut seed = [0u8; 8];
    let mut filled = 0;
    // getrandom may return fewer bytes than asked (or EINTR); a bounded
    // number of attempts keeps this loop finite on a misbehaving kernel.
    for _ in 0..16 {
        if filled == seed.len() {
            break;
        }
        let rest = &mut seed[filled..];
        // SAFETY: the pointer and length describe `rest`, a live, writable
        // buffer owned by this frame.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    if filled != seed.len() {
        return Err(io::Error::other("getrandom returned too few bytes"));
    }
    Ok(u64::from_le_bytes(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_seeds_differ() {
        // A collision of two 64-bit draws is a 2^-64 event: a failure here
        // means the bytes are not random.
        assert_ne!(os_seed().unwrap(), os_seed().unwrap());
    }
}
