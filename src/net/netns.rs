//! Network namespaces of dgram's own (Linux, root), for `dgram lab nat`:
//! made and wired with iproute2 and nftables, entered from a short-lived
//! thread with `setns(2)`, and removed when their [`Namespaces`] guard is
//! dropped, whatever the path out (an error, a panic, a signal that the
//! caller turned into an error).
//!
//! A socket belongs to the namespace of the thread that created it, for
//! the rest of its life: [`enter`] creates sockets in a namespace and hands
//! them back, so that one thread can then measure with sockets of many
//! namespaces without a process per host.

use std::io::{self, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};

use nix::sched::{CloneFlags, setns};

use crate::Error;

/// The namespaces made so far, removed on drop (each `ip netns delete`
/// also removes the veth ends inside, and so their peers).
#[derive(Debug)]
pub struct Namespaces {
    prefix: String,
    names: Vec<String>,
}

impl Namespaces {
    /// No namespace yet; each one [`add`](Namespaces::add) makes is called
    /// `PREFIX-SHORT`. The prefix should name the process (its pid), so
    /// that two runs never share a name.
    pub fn new(prefix: String) -> Namespaces {
        Namespaces {
            prefix,
            names: Vec::new(),
        }
    }

    /// Makes the namespace `PREFIX-SHORT` with `lo` up; returns its name.
    pub fn add(&mut self, short: &str) -> Result<String, Error> {
        let name = format!("{}-{short}", self.prefix);
        // Remembered before it exists: a failure or a signal half-way still
        // removes it (deleting a namespace that was never made is harmless).
        self.names.push(name.clone());
        ip(&["netns", "add", &name])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "delete", name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Removes the namespaces called `STEM-PID-…` whose process PID has ended:
/// what a run killed by SIGKILL (which no guard survives) left behind.
/// Those of live processes, and every other namespace, are left alone.
/// Returns the names removed.
pub fn remove_stale(stem: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(stem)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != own
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            && ip(&["netns", "delete", &name]).is_ok()
        {
            removed.push(name);
        }
    }
    removed
}

/// Runs `PROGRAM ARGS…` with `input` on its standard input; a failure is
/// an error naming the command and what it wrote on stderr.
pub fn command(program: &str, args: &[&str], input: Option<&str>) -> Result<(), Error> {
    let line = || format!("{program} {}", args.join(" "));
    let failed = |detail: String| Error::LabSetup {
        command: line(),
        detail,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "{} ({})",
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        )))
    }
}

/// Runs `ip ARGS…`.
pub fn ip(args: &[&str]) -> Result<(), Error> {
    command("ip", args, None)
}

/// Loads nftables `rules` (a file's text) in namespace `name`.
pub fn nft(name: &str, rules: &str) -> Result<(), Error> {
    command(
        "ip",
        &["netns", "exec", name, "nft", "-f", "-"],
        Some(rules),
    )
}

/// Runs `f` on a thread inside namespace `name` and returns what it made
/// (sockets made there stay there). The `/proc/sys/net` files it opens are
/// that namespace's too.
pub fn enter<T: Send>(name: &str, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let path = format!("/run/netns/{name}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(&path)?;
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// Writes a `/proc/sys` setting (`net/ipv4/ip_forward`) in namespace
/// `name`, and reads it back.
pub fn sysctl(name: &str, key: &str, value: &str) -> Result<String, Error> {
    let path = format!("/proc/sys/{key}");
    enter(name, || {
        std::fs::write(&path, value)?;
        Ok(std::fs::read_to_string(&path)?.trim().to_string())
    })
    .map_err(|source| Error::LabSysctl {
        namespace: name.to_string(),
        key: key.to_string(),
        source,
    })
}

/// Reads a `/proc/sys` setting in namespace `name`.
pub fn read_sysctl(name: &str, key: &str) -> Option<String> {
    let path = format!("/proc/sys/{key}");
    enter(name, || {
        Ok(std::fs::read_to_string(&path)?.trim().to_string())
    })
    .ok()
}

/// True when `program` is an executable file in a directory of `PATH`.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// What an experiment in network namespaces of its own lacks here, as
/// "needs …" (root, `ip`, `nft`); `None` when it can run.
pub fn lab_missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (it builds network namespaces)".into());
    }
    for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if !on_path(program) {
            return Some(format!("needs {program} ({package})"));
        }
    }
    None
}

/// A non-blocking UDP socket bound to `addr` in namespace `name`.
pub fn udp_socket_in(name: &str, addr: SocketAddr) -> Result<UdpSocket, Error> {
    enter(name, || {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    })
    .map_err(|source| Error::Bind { addr, source })
}
