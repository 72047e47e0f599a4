//! `cp`'s tar archives: [`TarSink`] writes a walk to stdout as a tar (docker's `cp SRC -`), and
//! [`extract`] reads a tar from stdin (plain, gzip or zstd) into `cp`'s directory writer.
//!
//! The format is the `tar` crate's; only the entries are den's. A tar's paths are not trusted:
//! an entry with `..` is refused ([`entry_rel`]), and its parents are reached through the
//! writer's [`super::place::Base`], which resolves them inside the container's root.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::fs::tree::Tracked;
use crate::fs::{Data, Kind, Meta, Origin, Sink, Writer};

use super::CopyError;
use super::place::Base;

/// Writes entries as a tar archive.
pub(super) struct TarSink<'w> {
    pub(super) b: tar::Builder<&'w mut dyn Write>,
}

impl TarSink<'_> {
    pub(super) fn finish(self) -> Result<(), CopyError> {
        let out = self.b.into_inner().map_err(CopyError::Stdout)?;
        out.flush().map_err(CopyError::Stdout)
    }
}

impl Sink for TarSink<'_> {
    type Error = CopyError;

    fn put(
        &mut self,
        rel: &Path,
        kind: &Kind,
        meta: &Meta,
        data: Data<'_>,
    ) -> Result<(), CopyError> {
        use tar::EntryType;
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.mode);
        h.set_uid(meta.uid.into());
        h.set_gid(meta.gid.into());
        h.set_mtime(meta.mtime.0.max(0) as u64);
        h.set_size(0);
        let dev = |h: &mut tar::Header, dev: u64| -> io::Result<()> {
            h.set_device_major(nix::sys::stat::major(dev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(dev) as u32)
        };
        let written = match kind {
            Kind::Dir => {
                h.set_entry_type(EntryType::Directory);
                let mut name = rel.as_os_str().to_owned();
                name.push("/");
                self.b.append_data(&mut h, Path::new(&name), io::empty())
            }
            Kind::File(size) => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(*size);
                // Exactly `size` bytes, whatever the file does meanwhile: the archive must stay
                // well-formed.
                let mut src = Tracked::new(data.r);
                let r = (&mut src).take(*size).chain(io::repeat(0)).take(*size);
                let res = self.b.append_data(&mut h, rel, r);
                if let (Err(_), Some(e)) = (&res, src.failed.take()) {
                    return Err(data.read_error(e).into());
                }
                res
            }
            Kind::Symlink(target) => {
                h.set_entry_type(EntryType::Symlink);
                self.b.append_link(&mut h, rel, target)
            }
            Kind::Link(target) => {
                h.set_entry_type(EntryType::Link);
                self.b.append_link(&mut h, rel, target)
            }
            Kind::Fifo => {
                h.set_entry_type(EntryType::Fifo);
                self.b.append_data(&mut h, rel, io::empty())
            }
            Kind::Char(d) | Kind::Block(d) => {
                let t = match kind {
                    Kind::Char(_) => EntryType::Char,
                    _ => EntryType::Block,
                };
                h.set_entry_type(t);
                dev(&mut h, *d).and_then(|()| self.b.append_data(&mut h, rel, io::empty()))
            }
        };
        written.map_err(CopyError::Stdout)
    }
}

/// Extract the tar (plain, gzip or zstd) on `input` into the sink, entry by entry.
pub(super) fn extract(input: &mut dyn Read, sink: &mut Writer<Base>) -> Result<(), CopyError> {
    let mut archive = tar::Archive::new(decompressed(input)?);
    for entry in archive.entries().map_err(CopyError::Archive)? {
        let mut entry = entry.map_err(CopyError::Archive)?;
        let name = entry.path_bytes().into_owned();
        let escape = |p: &[u8]| CopyError::Escape {
            path: sink.shown(Path::new(OsStr::from_bytes(p))),
        };
        let Some(rel) = entry_rel(&name).ok_or_else(|| escape(&name))? else {
            // `.`: the destination itself, which docker leaves as it is.
            continue;
        };
        let h = entry.header();
        let meta = meta_of(h);
        let device = || -> Result<u64, CopyError> {
            let major = h.device_major().map_err(CopyError::Archive)?.unwrap_or(0);
            let minor = h.device_minor().map_err(CopyError::Archive)?.unwrap_or(0);
            Ok(nix::sys::stat::makedev(major.into(), minor.into()))
        };
        let link = || -> Vec<u8> {
            entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default()
        };
        use tar::EntryType;
        let kind = match h.entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                Kind::File(entry.size())
            }
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink(PathBuf::from(OsString::from_vec(link()))),
            EntryType::Link => {
                let target = link();
                match entry_rel(&target) {
                    Some(Some(t)) => Kind::Link(t),
                    _ => return Err(escape(&target)),
                }
            }
            EntryType::Fifo => Kind::Fifo,
            EntryType::Char => Kind::Char(device()?),
            EntryType::Block => Kind::Block(device()?),
            // Global headers and anything else carry no file.
            _ => continue,
        };
        let data = Data {
            r: &mut entry,
            origin: Origin::Archive,
        };
        sink.put(&rel, &kind, &meta, data)?;
    }
    Ok(())
}

/// `input`, decompressed when its first bytes say gzip or zstd.
fn decompressed(input: &mut dyn Read) -> Result<Box<dyn Read + '_>, CopyError> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CopyError::Archive(e)),
        }
    }
    let chained = io::Cursor::new(head[..n].to_vec()).chain(input);
    Ok(match head[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(chained)),
        [0x28, 0xb5, 0x2f, 0xfd] => {
            Box::new(zstd::stream::read::Decoder::new(chained).map_err(CopyError::Archive)?)
        }
        _ => Box::new(chained),
    })
}

/// A tar header's mode, owners and time (a tar keeps no access time: the modification time).
fn meta_of(h: &tar::Header) -> Meta {
    let id = |r: io::Result<u64>| r.ok().and_then(|u| u32::try_from(u).ok()).unwrap_or(0);
    let mtime = h.mtime().unwrap_or(0) as i64;
    Meta {
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        uid: id(h.uid()),
        gid: id(h.gid()),
        atime: (mtime, 0),
        mtime: (mtime, 0),
        opaque: false,
    }
}

/// A tar entry's name as a path relative to the destination: a leading `/` and `.` segments are
/// dropped, as docker does; `None` when a `..` segment could climb out. `Some(None)` is `.`.
pub(super) fn entry_rel(name: &[u8]) -> Option<Option<PathBuf>> {
    let mut rel = PathBuf::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => rel.push(OsStr::from_bytes(c)),
        }
    }
    Some((!rel.as_os_str().is_empty()).then_some(rel))
}
