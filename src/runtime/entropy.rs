//! Randomness from the operating system, drawn here and handed to the
//! protocol (which draws none itself): session ids, the seal's nonce
//! prefix, the seed of the jitter generator.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// 64 unpredictable bits: from the OS's random source, or where that
/// fails, from `RandomState` (itself seeded by the OS) mixed with the time
/// and the process id. For ids and jitter, not for keys.
pub fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_ne_bytes(bytes);
    }
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// `N` bytes from the OS's random source, for what must not repeat or be
/// guessed (a seal's nonce prefix); an error where the OS gives none.
pub fn secret<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(bytes)
}
