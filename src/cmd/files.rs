//! Local files named on the command line (`--key-file`, `dgram keygen
//! FILE`, `--log`, `--history`). What dgram reads or writes must be a
//! regular file, or (to be written) nothing yet, in a directory that
//! exists. dgram opens nothing that could block it (a FIFO waits in
//! `open(2)` for its other end, after the signal handlers are installed,
//! so that only SIGKILL would end it), reads no more than it needs (a
//! device such as `/dev/zero` never ends), and creates no directories:
//! each refusal is an `io::Error` whose message says, in words, what is
//! wrong with the path.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// What a file of this type is, for a message ("a FIFO").
pub fn kind(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// A refusal: `path` names something that is not a regular file.
fn not_regular(meta: &Metadata) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {}, not a regular file", kind(meta.file_type())),
    )
}

/// Where a path to be written stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A regular file (or a link to one) is there.
    Existing,
    /// Nothing is there yet, and its directory exists.
    New,
}

/// Checks a path to be written: a regular file, or nothing yet in a
/// directory that exists. A symbolic link to nothing is refused with
/// where it points (creating through it would be a surprise, and
/// `O_EXCL` cannot); a missing directory is named, never created.
pub fn check_target(path: &Path) -> io::Result<Target> {
    match std::fs::symlink_metadata(path) {
        Ok(link) if link.file_type().is_symlink() => match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(Target::Existing),
            Ok(meta) => Err(not_regular(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(dangling(path)?),
            Err(e) => Err(e),
        },
        Ok(meta) if meta.is_file() => Ok(Target::Existing),
        Ok(meta) => Err(not_regular(&meta)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            check_directory(path)?;
            Ok(Target::New)
        }
        Err(e) => Err(e),
    }
}

/// The refusal for `path`, a symbolic link to nothing: where it points.
pub fn dangling(path: &Path) -> io::Result<io::Error> {
    let to = std::fs::read_link(path)?;
    Ok(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "it is a symbolic link to {}, which does not exist",
            to.display()
        ),
    ))
}

/// Checks that the directory a new file would go in exists.
fn check_directory(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "its directory {} does not exist (dgram creates no directories: make it first, mkdir -p {})",
                dir.display(),
                dir.display()
            ),
        )),
        Err(e) => Err(e),
    }
}

/// Opens with `options`, never blocking in `open(2)` (`O_NONBLOCK`: a FIFO
/// without its other end fails or opens at once instead of waiting), and
/// keeps the file only if what was opened is a regular file (the path may
/// have changed since it was checked).
pub fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        options,
        nix::fcntl::OFlag::O_NONBLOCK.bits() | nix::fcntl::OFlag::O_NOCTTY.bits(),
    );
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok(file)
}

/// Reads a regular file of at most `limit` bytes. Anything else (missing:
/// `NotFound`; not a regular file; larger) is refused before or instead
/// of reading it.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => dangling(path).unwrap_or(e),
        _ => e,
    })?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let file = open_regular(path, OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("it holds more than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// True for the null device (`/dev/null`, by what it is rather than its
/// name): a file that means "keep nothing", as it does for shells.
#[cfg(unix)]
pub fn is_null_device(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (Ok(meta), Ok(null)) = (std::fs::metadata(path), std::fs::metadata("/dev/null")) else {
        return false;
    };
    meta.file_type().is_char_device() && meta.rdev() == null.rdev()
}

/// True for the null device (`/dev/null`): a file that means "keep
/// nothing", as it does for shells.
#[cfg(not(unix))]
pub fn is_null_device(path: &Path) -> bool {
    path.as_os_str().eq_ignore_ascii_case("NUL")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dgram-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Each kind of path to be written: a file, nothing yet, a missing
    /// directory (named, not created), a symbolic link to nothing (its
    /// target named), a directory and a device.
    #[test]
    fn targets() {
        let dir = scratch("targets");
        let file = dir.join("file");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(check_target(&file).unwrap(), Target::Existing);
        assert_eq!(check_target(&dir.join("new")).unwrap(), Target::New);
        let deep = dir.join("a/b/new");
        let err = check_target(&deep).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "its directory {} does not exist",
                dir.join("a/b").display()
            )),
            "{err}"
        );
        assert!(!dir.join("a").exists());
        let on_file = check_target(&file.join("x")).unwrap_err().to_string();
        assert!(on_file.contains("is not a directory"), "{on_file}");
        #[cfg(unix)]
        {
            let link = dir.join("link");
            std::os::unix::fs::symlink(dir.join("nowhere"), &link).unwrap();
            let err = check_target(&link).unwrap_err().to_string();
            assert!(err.contains("symbolic link to"), "{err}");
            assert!(err.contains("nowhere, which does not exist"), "{err}");
            let err = check_target(Path::new("/dev/null"))
                .unwrap_err()
                .to_string();
            assert_eq!(err, "it is a character device, not a regular file");
            assert!(is_null_device(Path::new("/dev/null")));
            assert!(!is_null_device(&file));
        }
        let err = check_target(&dir).unwrap_err().to_string();
        assert_eq!(err, "it is a directory, not a regular file");
    }

    /// A file is read whole up to the limit, refused beyond it; a device
    /// and a FIFO are refused without reading (nor blocking).
    #[test]
    fn reads_are_bounded() {
        let dir = scratch("reads");
        let file = dir.join("file");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        let err = read_regular(&file, 4).unwrap_err().to_string();
        assert_eq!(err, "it holds more than 4 bytes");
        #[cfg(unix)]
        {
            let err = read_regular(Path::new("/dev/zero"), 100).unwrap_err();
            assert_eq!(
                err.to_string(),
                "it is a character device, not a regular file"
            );
            let fifo = dir.join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            assert!(made.unwrap().success(), "mkfifo {}", fifo.display());
            let err = read_regular(&fifo, 100).unwrap_err();
            assert_eq!(err.to_string(), "it is a FIFO, not a regular file");
            // Even past the check, opening does not wait for a writer.
            let err = open_regular(&fifo, OpenOptions::new().read(true)).unwrap_err();
            assert_eq!(err.to_string(), "it is a FIFO, not a regular file");
        }
        assert_eq!(
            read_regular(&dir.join("missing"), 1).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
