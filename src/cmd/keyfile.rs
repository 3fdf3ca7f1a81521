//! Key files (`--key-file`, `dgram keygen`): a new key from the operating
//! system's random source, the file that holds it (64 hex digits and a
//! newline, mode 0600), and the `dgram keygen` command ([`keygen`]). The
//! protocol layer ([`seal`](crate::proto::seal)) only ever sees the
//! [`Key`]; everything that touches a file or the OS is here.

use std::io::{self, Write};
use std::path::Path;

use super::files;
use crate::Error;
use crate::output::escape::escape_line;
use crate::output::{Sink, sink};
use crate::proto::seal::Key;
use crate::runtime::entropy;

/// `dgram keygen FILE`: a new key in a new file, and on stdout where it
/// went and what to do with it.
pub fn keygen(file: &Path) -> Result<(), Error> {
    if file.as_os_str() == "-" || file.is_dir() {
        return Err(Error::Usage {
            message: format!(
                "keygen writes a new file: {} is not one (give a path such as team.key)",
                file.display()
            ),
        });
    }
    write_new(&generate()?, file)?;
    let path = escape_line(&file.display().to_string());
    sink::stdout()
        .write_text(&format!(
            "wrote a new 256-bit key to {path} (mode 0600). Give a copy to each member by a safe channel, then: dgram chat --key-file {path} ...\n"
        ))
        .map_err(|source| Error::WriteOutput { source })
}

/// A new random key from the operating system.
pub fn generate() -> Result<Key, Error> {
    let bytes = entropy::secret().map_err(|source| Error::Randomness { source })?;
    Ok(Key::from_bytes(bytes))
}

/// The key as a key file holds it: 64 hex digits and a newline.
fn to_file_text(key: &Key) -> String {
    let mut text: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    text.push('\n');
    text
}

/// The most a key file is read: the 64 digits and a newline leave room
/// for whitespace, and a file much larger than this is not a key file.
pub const MAX_KEY_FILE: u64 = 4096;

/// Reads a key file: 64 hex digits (whitespace around them ignored).
/// Only a regular file of at most [`MAX_KEY_FILE`] bytes is read: a FIFO
/// or a device (`/dev/zero`) is refused before anything is read from it.
/// The warning, if any, says the file is readable by others.
pub fn read(path: &Path) -> Result<(Key, Option<String>), Error> {
    let bad = |reason: String| Error::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = files::read_regular(path, MAX_KEY_FILE).map_err(|e| {
        bad(match e.kind() {
            // A link to nothing: keygen would refuse it too, so keygen is
            // not suggested.
            io::ErrorKind::NotFound if path.is_symlink() => e.to_string(),
            io::ErrorKind::NotFound => {
                format!(
                    "it does not exist (make one with `dgram keygen {}`)",
                    path.display()
                )
            }
            io::ErrorKind::FileTooLarge => {
                format!("{e}; a key file holds 64 hex digits (256 bits), from `dgram keygen`")
            }
            io::ErrorKind::InvalidInput => {
                format!("{e} (a key file is made by `dgram keygen FILE`)")
            }
            _ => e.to_string(),
        })
    })?;
    let key = parse(&bytes).map_err(bad)?;
    Ok((key, readable_by_others(path)))
}

/// The key in a key file's bytes, or why there is none.
fn parse(bytes: &[u8]) -> Result<Key, String> {
    let text = String::from_utf8_lossy(bytes);
    let digits = text.trim();
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "a key file holds 64 hex digits (256 bits); this one holds {} characters{}",
            digits.len(),
            if digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                ""
            } else {
                " that are not all hex digits"
            }
        ));
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(Key::from_bytes(bytes))
}

/// Writes the key to a new file (mode 0600; never over an existing
/// file). A missing directory is named, not made; a symbolic link to
/// nothing is refused with where it points.
pub fn write_new(key: &Key, path: &Path) -> Result<(), Error> {
    let failed = |source| Error::WriteKey {
        path: path.to_path_buf(),
        source,
    };
    // An existing file is left to `create_new`, which refuses it.
    files::check_target(path).map_err(|e| Error::KeyFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = files::open_regular(path, &mut options).map_err(failed)?;
    file.write_all(to_file_text(key).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)
}

/// A warning when the file may be read by group or others, as ssh warns.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "the key file {} can be read by others (mode {mode:04o}): anyone who reads it can read and forge your messages; chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a key file holds reads back as the same key.
    #[test]
    fn file_text_round_trips() {
        let key = Key::from_bytes(std::array::from_fn(|i| i as u8 * 7));
        let text = to_file_text(&key);
        assert_eq!(text.len(), 65);
        assert_eq!(parse(text.as_bytes()).unwrap().as_bytes(), key.as_bytes());
        assert_ne!(generate().unwrap().as_bytes(), key.as_bytes());
    }
}
