//! The options several commands share, as clap defines them and as the
//! commands take them: socket buffers ([`BufferArgs`]), a group
//! ([`GroupArgs`]), a key file ([`load_key`]), a capture file
//! ([`PcapArgs`], [`open_capture`]).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::files;
use super::keyfile;
use super::parse;
use crate::Error;
use crate::net::SocketOptions;
use crate::net::capture::Capture;
use crate::net::group::{self, GroupKind, GroupOptions, Iface};
use crate::output::escape::escape_line;
use crate::proto::seal::Key;

/// Socket buffer sizes, shared by every command.
#[derive(Debug, Args)]
pub struct BufferArgs {
    /// Request this SO_RCVBUF (bytes; k/M suffixes). Requested and effective
    /// sizes are shown: Linux doubles requests and caps them at twice
    /// net.core.rmem_max.
    #[arg(long, value_name = "BYTES", value_parser = parse::buffer_size)]
    pub rcvbuf: Option<usize>,
    /// Request this SO_SNDBUF (bytes; k/M suffixes).
    #[arg(long, value_name = "BYTES", value_parser = parse::buffer_size)]
    pub sndbuf: Option<usize>,
    /// The application's receive buffer: longer datagrams are truncated
    /// (and reported so). 1 to 65535.
    #[arg(long, value_name = "BYTES", default_value = "65535", value_parser = parse::recv_size)]
    pub max_size: usize,
}

impl BufferArgs {
    /// A socket bound to `bind` with the buffer sizes asked for.
    pub fn socket(&self, bind: SocketAddr) -> SocketOptions {
        SocketOptions {
            bind,
            rcvbuf: self.rcvbuf,
            sndbuf: self.sndbuf,
        }
    }
}

/// Joining a group: multicast or broadcast.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Join this multicast group: IPv4 224.0.0.0/4 such as
    /// 239.1.2.3:5000, or IPv6 such as [ff02::1:2]:5000 (with --iface).
    /// Members on one host share the port.
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr, conflicts_with = "broadcast")]
    group: Option<SocketAddr>,
    /// Use this IPv4 broadcast address as the group, such as
    /// 10.77.0.255:5000 (the subnet's) or 255.255.255.255:5000.
    #[arg(long, value_name = "ADDR", value_parser = parse::socket_addr)]
    broadcast: Option<SocketAddr>,
    /// The interface of the group, by name or address (default: where the
    /// route to the group leads).
    #[arg(long, value_name = "NAME|ADDR")]
    iface: Option<String>,
    /// Multicast TTL (hop limit), 1 to 255; 1 keeps the group on the LAN.
    // The range (1 to 255) is checked with the other group options, which
    // say why in one line.
    #[arg(long, value_name = "N", value_parser = parse::count::<u32>(0, u32::MAX.into()))]
    ttl: Option<u32>,
}

impl GroupArgs {
    /// The group asked for, checked; `None` without --group/--broadcast.
    pub fn options(&self) -> Result<Option<GroupOptions>, Error> {
        let usage = |message: &str| {
            Err(Error::Usage {
                message: message.to_string(),
            })
        };
        let (addr, kind) = match (self.group, self.broadcast) {
            (Some(addr), _) => (addr, GroupKind::Multicast),
            (None, Some(addr)) => (addr, GroupKind::Broadcast),
            (None, None) if self.iface.is_some() => {
                return usage("--iface picks a group's interface: give --group or --broadcast too");
            }
            (None, None) if self.ttl.is_some() => {
                return usage("--ttl is a multicast group's: give --group too");
            }
            (None, None) => return Ok(None),
        };
        if kind == GroupKind::Broadcast && self.ttl.is_some() {
            return usage("--ttl is for multicast: broadcasts never leave the LAN");
        }
        let options = GroupOptions {
            addr,
            kind,
            iface: self.iface.as_deref().map(Iface::parse),
            ttl: self.ttl.unwrap_or(group::DEFAULT_TTL),
        };
        group::check(&options)?;
        Ok(Some(options))
    }
}

/// Reads `--key-file`, warning on stderr when others can read it.
pub fn load_key(path: &Path) -> Result<Key, Error> {
    let (key, warning) = keyfile::read(path)?;
    if let Some(warning) = warning {
        let _ = writeln!(io::stderr(), "warning: {}", escape_line(&warning));
    }
    Ok(key)
}

/// `--pcap FILE`, shared by listen, send, chat, ping and bench.
#[derive(Debug, Args)]
pub struct PcapArgs {
    /// Write every datagram sent and received, as it was on the wire, to
    /// FILE in the classic pcap format (IPv4/IPv6 and UDP headers, kernel
    /// receive timestamps where given) for tshark or Wireshark. The file
    /// is created or truncated at the start; see docs/pcap.md.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

/// Creates (or truncates) the `--pcap` file and writes its header. Only a
/// regular file, or a new one in a directory that exists, or the null
/// device: a FIFO or another device is refused before it is opened, `-`
/// too (standard output carries the events), and no directory is made.
pub fn open_capture(path: Option<&Path>) -> Result<Option<Arc<Capture>>, Error> {
    let Some(path) = path else {
        return Ok(None);
    };
    let refuse = |reason: String| Error::PcapFile {
        path: path.to_path_buf(),
        reason,
    };
    if path.as_os_str() == "-" {
        return Err(refuse(
            "standard output carries the events: give a file name".to_string(),
        ));
    }
    let failed = |source| Error::WritePcap {
        path: path.to_path_buf(),
        source,
    };
    let file = if files::is_null_device(path) {
        // Keeps nothing, as for shells: what the capture itself costs,
        // without the file's writes (docs/PERFORMANCE.md).
        OpenOptions::new().write(true).open(path).map_err(failed)?
    } else {
        files::check_target(path).map_err(|e| refuse(e.to_string()))?;
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        files::open_regular(path, &mut options).map_err(failed)?
    };
    Ok(Some(Arc::new(Capture::new(path, Box::new(file))?)))
}

/// Flushes the capture, if there is one, once a command's run is over:
/// the run's own error comes first; a capture that could not be written
/// fails a run that went well.
pub fn finish_capture<T>(
    capture: Option<&Arc<Capture>>,
    result: Result<T, Error>,
) -> Result<T, Error> {
    let flushed = capture.map_or(Ok(()), |capture| capture.finish());
    let value = result?;
    flushed.map(|()| value)
}
