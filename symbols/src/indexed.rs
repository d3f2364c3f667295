//! A `.sym` file kept on disk with a small in-memory index, parsed a record at a
//! time: what lets a server keep every module's symbols warm without holding the
//! parsed files (1–3× their text size) in memory.
//!
//! The index holds, for each FUNC, PUBLIC, STACK CFI INIT and STACK WIN record, its
//! address range and where its text is in the file, filtered exactly as Breakpad's
//! parser filters overlapping ranges. A lookup reads the few records that can answer
//! it (the covering FUNC with its line and INLINE records and the FILE and
//! INLINE_ORIGIN records they name; or the nearest PUBLIC and the FUNC before it;
//! the covering STACK CFI block and STACK WIN records), parses that small `.sym` with
//! the Breakpad parser, and answers with the parsed file's own `fill_symbol` /
//! `walk_frame` — so results are the Breakpad parser's, record for record.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use breakpad_symbols::{FrameSymbolizer, FrameWalker, Module, SymbolError, SymbolFile};

use crate::cache::LruBytes;

/// Where one record (with its sublines) starts in the file, and the range it covers
/// (16 bytes: the index of a big file has hundreds of thousands of these). A
/// record's text runs to the first line that does not continue it, so its length
/// is not kept; record offsets past 4 GiB are refused.
#[derive(Debug, Clone, Copy)]
struct Rec {
    start: u64,
    off: u32,
    /// Size of the covered range (for STACK WIN, after Breakpad's fix-up).
    size: u32,
}

impl Rec {
    /// Inclusive end of the covered range.
    fn end(&self) -> u64 {
        self.start
            .saturating_add(u64::from(self.size).saturating_sub(1))
    }
}

/// A STACK WIN record.
type WinRec = Rec;

/// Which records a small parsed file was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MiniKey {
    Func(u32, Option<u32>, Option<u32>),
    Public(Option<u32>, Option<u32>, Option<u32>, Option<u32>),
    Walk(Option<u32>, Option<u32>, Option<u32>),
}

/// A `.sym` on disk with its index.
pub(crate) struct IndexedSym {
    file: File,
    module_line: Vec<u8>,
    funcs: Vec<Rec>,
    /// (address, offset), sorted by address; equal addresses in file order.
    publics: Vec<(u64, u32)>,
    cfi: Vec<Rec>,
    framedata: Vec<WinRec>,
    fpo: Vec<WinRec>,
    /// FILE and INLINE_ORIGIN records: id to offset.
    files: HashMap<u32, u32>,
    origins: HashMap<u32, u32>,
    minis: Mutex<LruBytes<MiniKey, Arc<SymbolFile>>>,
}

/// A shared indexed symbol file.
pub(crate) type Parsed = Arc<IndexedSym>;

fn hex(field: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()
}

fn dec(field: &[u8]) -> Option<u32> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Whether `b` separates fields: Breakpad's parser takes spaces and tabs alike.
fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t')
}

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(is_space).filter(|f| !f.is_empty())
}

/// The fields of `line` after `keyword`, if the line is that record (the keyword,
/// then spaces or tabs).
fn record<'a>(line: &'a [u8], keyword: &[u8]) -> Option<&'a [u8]> {
    space1(line.strip_prefix(keyword)?)
}

/// The record a FUNC or STACK CFI INIT line opens at `off`, from its next two
/// fields (`address size`); `None` for a range Breakpad drops. Errors name `what`.
fn block_start<'a>(
    f: &mut impl Iterator<Item = &'a [u8]>,
    off: u32,
    what: &'static str,
    n: u64,
) -> Result<Option<Rec>, SymbolError> {
    let bad = || SymbolError::ParseError(what, n);
    let addr = f.next().and_then(hex).ok_or_else(bad)?;
    let size = f.next().and_then(hex).ok_or_else(bad)?;
    let size = u32::try_from(size).map_err(|_| bad())?;
    // Breakpad drops a record whose range is empty or runs past the address
    // space (a FUNC's lines go with it).
    if size == 0 || addr.checked_add(u64::from(size) - 1).is_none() {
        return Ok(None);
    }
    Ok(Some(Rec {
        start: addr,
        off,
        size,
    }))
}

/// A FUNC's line record: `address size line file`, the first field all hex.
/// (Keywords like `FILE` and `FUNC` start with a hex letter too.)
fn is_line_record(line: &[u8]) -> bool {
    line.split(is_space)
        .next()
        .is_some_and(|f| !f.is_empty() && f.iter().all(u8::is_ascii_hexdigit))
}

/// What continues a record onto its next lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// A one-line record (PUBLIC, FILE, INLINE_ORIGIN, STACK WIN).
    Line,
    /// FUNC: line records, INLINE and INLINE_ORIGIN lines.
    Func,
    /// STACK CFI INIT: STACK CFI lines.
    Cfi,
}

impl Block {
    /// Whether `line` (without its line ending) belongs to an open record of this kind.
    fn continues(self, line: &[u8]) -> bool {
        match self {
            Block::Line => false,
            Block::Func => {
                // Breakpad looks for these two keywords followed by a space.
                is_line_record(line)
                    || line.starts_with(b"INLINE ")
                    || line.starts_with(b"INLINE_ORIGIN ")
            }
            // `STACK CFI <address> <rules>` (not `STACK CFI INIT`).
            Block::Cfi => record(line, b"STACK CFI")
                .is_some_and(|rest| rest.first().is_some_and(u8::is_ascii_hexdigit)),
        }
    }
}

fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let Some(l) = line.strip_suffix(b"\r") {
        line = l;
    }
    line
}

/// Breakpad's `into_rangemap_safe`: sort by range (file order among equal ranges,
/// as its stable sort keeps them), drop ranges overlapping the previous kept one.
/// In place: the lists of a big file are the largest allocations of indexing.
fn filter_overlaps(recs: &mut Vec<Rec>) {
    recs.sort_unstable_by_key(|r| (r.start, r.end(), r.off));
    recs.dedup_by(|next, kept| next.start <= kept.end());
    recs.shrink_to_fit();
}

/// Breakpad's separator between fields (nom's `space1`): spaces and tabs, at
/// least one. Returns what follows it.
fn space1(s: &[u8]) -> Option<&[u8]> {
    let n = s.iter().take_while(|b| is_space(b)).count();
    (n > 0).then_some(&s[n..])
}

/// Breakpad's `hex_str` and the separator after it: at most `digits` hex digits (at
/// least one). Returns the value, how many digits it took and the rest after the
/// separator.
fn hex_field(s: &[u8], digits: usize) -> Option<(u64, usize, &[u8])> {
    let n = s
        .iter()
        .take(digits)
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if n == 0 {
        return None;
    }
    let value = s[..n].iter().fold(0u64, |v, &b| {
        v << 4 | u64::from(char::from(b).to_digit(16).unwrap_or(0))
    });
    Some((value, n, space1(&s[n..])?))
}

/// A STACK WIN record as Breakpad's parser reads it.
#[derive(Debug)]
struct WinLine {
    /// The type digit: `4` (FrameData), `0` (FPO), others ignored.
    ty: u8,
    address: u64,
    size: u32,
    /// Where the size field is in the line.
    size_field: std::ops::Range<usize>,
    /// Whether Breakpad keeps the record: its type and its program-string flag
    /// agree (`4` has a program string, every other type none).
    consistent: bool,
}

/// Reads a STACK WIN line (without its line ending) with Breakpad's grammar:
/// fields separated by spaces or tabs, a one-digit type, a 16-digit address,
/// seven 8-digit hex fields, a one-digit program-string flag, then the rest of
/// the line (UTF-8). None where Breakpad's parser refuses the line.
fn parse_win(line: &[u8]) -> Option<WinLine> {
    let s = space1(line.strip_prefix(b"STACK WIN")?)?;
    let (&ty, s) = s.split_first().filter(|(b, _)| b.is_ascii_hexdigit())?;
    let s = space1(s)?;
    let (address, _, s) = hex_field(s, 16)?;
    let size_at = line.len() - s.len();
    let (size, digits, mut s) = hex_field(s, 8)?;
    for _ in 0..6 {
        (_, _, s) = hex_field(s, 8)?;
    }
    let (&flag, s) = s.split_first().filter(|(b, _)| b.is_ascii_digit())?;
    let rest = space1(s)?;
    if rest.contains(&b'\r') || std::str::from_utf8(rest).is_err() {
        return None;
    }
    Some(WinLine {
        ty,
        address,
        size: u32::try_from(size).ok()?,
        size_field: size_at..size_at + digits,
        consistent: (ty == b'4') == (flag == b'1'),
    })
}

/// Breakpad's STACK WIN insertion (file order): a record whose range is empty or
/// runs past the address space is dropped; a record starting inside the previous
/// one shortens the previous; other intersections are dropped.
fn push_win(list: &mut Vec<WinRec>, rec: Rec) {
    if rec.size == 0 || rec.start.checked_add(u64::from(rec.size) - 1).is_none() {
        return;
    }
    if let Some(last) = list.last_mut()
        && rec.start <= last.end()
        && last.start <= rec.end()
    {
        if rec.start > last.start {
            last.size = (rec.start - last.start) as u32;
        } else if (last.start, last.end()) != (rec.start, rec.end()) {
            return;
        }
    }
    list.push(rec);
}

/// The covering record of a sorted, non-overlapping list.
fn covering<T>(list: &[T], addr: u64, range: impl Fn(&T) -> (u64, u64)) -> Option<u32> {
    let i = list.partition_point(|r| range(r).0 <= addr);
    let cand = i.checked_sub(1)?;
    (addr <= range(&list[cand]).1).then_some(cand as u32)
}

fn covering_win(list: &[WinRec], addr: u64) -> Option<u32> {
    covering(list, addr, |w| (w.start, w.end()))
}

impl IndexedSym {
    /// Indexes the `.sym` in `file`, reading it once front to back (never whole
    /// in memory), and keeps `file` to read records from. `mini_budget` bounds the
    /// small parsed files kept. A record starting past 4 GiB is a parse error.
    pub(crate) fn build(file: File, mini_budget: u64) -> Result<Self, SymbolError> {
        use std::io::{BufRead, Seek};
        let mut funcs = Vec::new();
        let mut publics = Vec::new();
        let mut cfi = Vec::new();
        let mut framedata = Vec::new();
        let mut fpo = Vec::new();
        let mut files = HashMap::new();
        let mut origins = HashMap::new();
        let mut module_line = Vec::new();
        // The open FUNC or STACK CFI INIT block: (rec, is_func).
        let mut open: Option<(Rec, bool)> = None;
        let mut pos = 0u64;
        let mut n = 0u64;
        let bad = |what: &'static str, n: u64| SymbolError::ParseError(what, n);
        let close = |open: &mut Option<(Rec, bool)>, funcs: &mut Vec<Rec>, cfi: &mut Vec<Rec>| {
            if let Some((rec, is_func)) = open.take() {
                if is_func {
                    funcs.push(rec)
                } else {
                    cfi.push(rec)
                }
            }
        };
        (&file).seek(std::io::SeekFrom::Start(0))?;
        let mut reader = std::io::BufReader::with_capacity(64 << 10, &file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = reader.read_until(b'\n', &mut buf)?;
            if read == 0 {
                break;
            }
            n += 1;
            // Offsets of records past 4 GiB do not fit the index.
            let off = u32::try_from(pos).map_err(|_| bad("record past 4 GiB", n));
            pos += read as u64;
            let line = trim_line_end(buf.strip_suffix(b"\n").unwrap_or(&buf));
            let sub_of_open = match open {
                Some((_, true)) => Block::Func.continues(line),
                Some((_, false)) => Block::Cfi.continues(line),
                None => false,
            };
            if !sub_of_open {
                close(&mut open, &mut funcs, &mut cfi);
            }
            if sub_of_open || line.is_empty() {
                // Part of the open block (an INLINE_ORIGIN inside a FUNC block, as
                // older files have them, is global all the same), or a blank line.
                if line.starts_with(b"INLINE_ORIGIN ") {
                    let id = fields(line)
                        .nth(1)
                        .and_then(dec)
                        .ok_or(bad("INLINE_ORIGIN", n))?;
                    origins.insert(id, off?);
                }
                continue;
            }
            let off = off?;
            if let Some(rest) = record(line, b"INLINE_ORIGIN") {
                let id = fields(rest)
                    .next()
                    .and_then(dec)
                    .ok_or(bad("INLINE_ORIGIN", n))?;
                origins.insert(id, off);
            } else if record(line, b"MODULE").is_some() {
                module_line = line.to_vec();
            } else if let Some(rest) = record(line, b"FILE") {
                let id = fields(rest).next().and_then(dec).ok_or(bad("FILE", n))?;
                files.insert(id, off);
            } else if let Some(rest) = record(line, b"FUNC") {
                let mut f = fields(rest).peekable();
                if f.peek() == Some(&&b"m"[..]) {
                    f.next();
                }
                if let Some(rec) = block_start(&mut f, off, "FUNC", n)? {
                    open = Some((rec, true));
                }
            } else if let Some(rest) = record(line, b"PUBLIC") {
                let mut f = fields(rest).peekable();
                if f.peek() == Some(&&b"m"[..]) {
                    f.next();
                }
                let addr = f.next().and_then(hex).ok_or(bad("PUBLIC", n))?;
                publics.push((addr, off));
            } else if let Some(rest) = record(line, b"STACK CFI INIT") {
                let mut f = fields(rest);
                if let Some(rec) = block_start(&mut f, off, "STACK CFI INIT", n)? {
                    open = Some((rec, false));
                }
            } else if line.starts_with(b"STACK WIN") {
                // Breakpad refuses the whole file for a line it cannot read, and
                // ignores a record whose type and program-string flag disagree.
                let win = parse_win(line).ok_or(bad("STACK WIN", n))?;
                let rec = Rec {
                    start: win.address,
                    off,
                    size: win.size,
                };
                match (win.ty, win.consistent) {
                    (b'4', true) => push_win(&mut framedata, rec),
                    (b'0', true) => push_win(&mut fpo, rec),
                    _ => {}
                }
            } else {
                // INFO lines, unknown STACK kinds, stray line records: nothing a
                // lookup needs.
            }
        }
        close(&mut open, &mut funcs, &mut cfi);
        if module_line.is_empty() {
            return Err(bad("no MODULE line", 1));
        }
        publics.sort_unstable();
        publics.shrink_to_fit();
        // Breakpad sorts the STACK WIN lists into range maps and drops overlaps,
        // after the fix-ups above, as it does the FUNC and STACK CFI lists.
        for list in [&mut funcs, &mut cfi, &mut framedata, &mut fpo] {
            filter_overlaps(list);
        }
        files.shrink_to_fit();
        origins.shrink_to_fit();
        Ok(IndexedSym {
            file,
            module_line,
            funcs,
            publics,
            cfi,
            framedata,
            fpo,
            files,
            origins,
            minis: Mutex::new(LruBytes::new(mini_budget)),
        })
    }

    /// Heap bytes of the index (what the memory budget counts for this file).
    pub(crate) fn index_size(&self) -> u64 {
        let recs = (self.funcs.capacity() + self.cfi.capacity()) * size_of::<Rec>()
            + (self.framedata.capacity() + self.fpo.capacity()) * size_of::<WinRec>()
            + self.publics.capacity() * size_of::<(u64, u32)>()
            + (self.files.capacity() + self.origins.capacity()) * (size_of::<(u32, u32)>() + 1);
        (recs + self.module_line.capacity() + size_of::<Self>()) as u64
    }

    /// Appends the record at `off` to `out`: its first line and the lines that
    /// continue it, each ending in a newline (also the last line of a file without one).
    fn read(&self, off: u32, block: Block, out: &mut Vec<u8>) -> std::io::Result<()> {
        // Most records are a line or a few; a long FUNC takes a few more reads.
        const CHUNK: usize = 1024;
        let mut pending: Vec<u8> = Vec::new();
        let mut pos = u64::from(off);
        let mut first = true;
        loop {
            let start = pending.len();
            pending.resize(start + CHUNK, 0);
            let n = loop {
                match self.file.read_at(&mut pending[start..], pos) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            pending.truncate(start + n);
            pos += n as u64;
            let mut taken = 0;
            while let Some(nl) = pending[taken..].iter().position(|&b| b == b'\n') {
                let raw = &pending[taken..taken + nl];
                if !first && !block.continues(trim_line_end(raw)) {
                    return Ok(());
                }
                out.extend_from_slice(raw);
                out.push(b'\n');
                first = false;
                taken += nl + 1;
                if block == Block::Line {
                    return Ok(());
                }
            }
            pending.drain(..taken);
            if n == 0 {
                // The end of the file: a last line without a newline.
                if !pending.is_empty() && (first || block.continues(trim_line_end(&pending))) {
                    out.extend_from_slice(&pending);
                    out.push(b'\n');
                }
                return Ok(());
            }
        }
    }

    /// The small parsed file for `key`, built by `make` on a miss.
    fn mini(
        &self,
        key: MiniKey,
        make: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> Option<Arc<SymbolFile>> {
        if let Some(hit) = self.minis.lock().unwrap().get(&key) {
            return Some(hit);
        }
        let mut text = self.module_line.clone();
        text.push(b'\n');
        if let Err(e) = make(&mut text) {
            tracing::warn!(error = %e, "reading an indexed symbol file failed");
            return None;
        }
        let parsed = match SymbolFile::from_bytes(&text) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::debug!(error = %e, "a symbol record does not parse");
                return None;
            }
        };
        let cost = parsed_size(&parsed) + text.len() as u64;
        self.minis
            .lock()
            .unwrap()
            .insert(key, Arc::clone(&parsed), cost);
        Some(parsed)
    }

    /// Appends the STACK WIN record `w` with the size Breakpad's fix-up gave it.
    fn push_win_line(&self, w: &WinRec, text: &mut Vec<u8>) -> std::io::Result<()> {
        let start = text.len();
        self.read(w.off, Block::Line, text)?;
        let line = trim_line_end(&text[start..text.len() - 1]);
        if let Some(win) = parse_win(line) {
            let field = start + win.size_field.start..start + win.size_field.end;
            text.splice(field, format!("{:x}", w.size).into_bytes());
        }
        Ok(())
    }

    /// Breakpad's `SymbolFile::fill_symbol`, answered from the records that matter.
    pub(crate) fn fill_symbol(&self, module: &dyn Module, frame: &mut dyn FrameSymbolizer) {
        let Some(addr) = frame.get_instruction().checked_sub(module.base_address()) else {
            return;
        };
        let fd = covering_win(&self.framedata, addr);
        let fpo = covering_win(&self.fpo, addr);
        let wins = |this: &Self, text: &mut Vec<u8>| -> std::io::Result<()> {
            if let Some(i) = fd {
                this.push_win_line(&this.framedata[i as usize], text)?;
            }
            if let Some(i) = fpo {
                this.push_win_line(&this.fpo[i as usize], text)?;
            }
            Ok(())
        };
        let mini = if let Some(func) = covering(&self.funcs, addr, |r| (r.start, r.end())) {
            self.mini(MiniKey::Func(func, fd, fpo), |text| {
                let rec = self.funcs[func as usize];
                let mut block = Vec::new();
                self.read(rec.off, Block::Func, &mut block)?;
                text.extend_from_slice(&block);
                // After the block: a FUNC block of an older file may define
                // INLINE_ORIGIN records itself, and the file's last definition of
                // an id (the one referenced here) is the one that counts.
                self.push_references(&block, text)?;
                wins(self, text)
            })
        } else {
            let i = self.publics.partition_point(|p| p.0 <= addr);
            let Some(last) = i.checked_sub(1) else {
                return;
            };
            let pub_addr = self.publics[last].0;
            let first = self.publics[..=last].partition_point(|p| p.0 < pub_addr);
            let prev = self
                .funcs
                .partition_point(|f| f.start < addr)
                .checked_sub(1)
                .map(|p| p as u32);
            self.mini(MiniKey::Public(Some(last as u32), prev, fd, fpo), |text| {
                for p in &self.publics[first..=last] {
                    self.read(p.1, Block::Line, text)?;
                }
                if let Some(prev) = prev {
                    // The FUNC line alone: only its range matters here.
                    self.read(self.funcs[prev as usize].off, Block::Line, text)?;
                }
                wins(self, text)
            })
        };
        if let Some(mini) = mini {
            mini.fill_symbol(module, frame);
        }
    }

    /// The FILE and INLINE_ORIGIN records a FUNC block names.
    fn push_references(&self, block: &[u8], text: &mut Vec<u8>) -> std::io::Result<()> {
        let mut file_ids = Vec::new();
        let mut origin_ids = Vec::new();
        for line in block.split(|&b| b == b'\n').skip(1) {
            if line.starts_with(b"INLINE ") {
                let mut f = fields(line).skip(3);
                file_ids.extend(f.next().and_then(dec));
                origin_ids.extend(f.next().and_then(dec));
            } else if is_line_record(line) {
                file_ids.extend(fields(line).nth(3).and_then(dec));
            }
        }
        file_ids.sort_unstable();
        file_ids.dedup();
        origin_ids.sort_unstable();
        origin_ids.dedup();
        for id in file_ids {
            if let Some(&off) = self.files.get(&id) {
                self.read(off, Block::Line, text)?;
            }
        }
        for id in origin_ids {
            if let Some(&off) = self.origins.get(&id) {
                self.read(off, Block::Line, text)?;
            }
        }
        Ok(())
    }

    /// Breakpad's `SymbolFile::walk_frame`, answered from the records that matter.
    pub(crate) fn walk_frame(
        &self,
        module: &dyn Module,
        walker: &mut dyn FrameWalker,
    ) -> Option<()> {
        let addr = walker
            .get_instruction()
            .checked_sub(module.base_address())?;
        let fd = covering_win(&self.framedata, addr);
        let fpo = covering_win(&self.fpo, addr);
        let cfi = covering(&self.cfi, addr, |r| (r.start, r.end()));
        if (fd, fpo, cfi) == (None, None, None) {
            return None;
        }
        let mini = self.mini(MiniKey::Walk(cfi, fd, fpo), |text| {
            if let Some(i) = fd {
                self.push_win_line(&self.framedata[i as usize], text)?;
            }
            if let Some(i) = fpo {
                self.push_win_line(&self.fpo[i as usize], text)?;
            }
            if let Some(i) = cfi {
                self.read(self.cfi[i as usize].off, Block::Cfi, text)?;
            }
            Ok(())
        })?;
        mini.walk_frame(module, walker)
    }
}

/// An estimate of the heap a parsed (small) symbol file occupies, for the budget.
/// Walks the file once (at load time): strings by capacity, records by size.
pub(crate) fn parsed_size(file: &SymbolFile) -> u64 {
    use std::mem::size_of_val;
    // A hash map entry's bookkeeping beyond key and value (control bytes, load factor).
    const MAP_ENTRY_OVERHEAD: usize = 16;
    let mut n = size_of_val(file) + file.module_id.capacity() + file.debug_file.capacity();
    for entry in file.functions.ranges_values() {
        let func = &entry.1;
        n += size_of_val(entry) + func.name.capacity();
        n += func.lines.ranges_values().map(size_of_val).sum::<usize>();
        n += func.inlinees.iter().map(size_of_val).sum::<usize>();
    }
    for public in &file.publics {
        n += size_of_val(public) + public.name.capacity();
    }
    for entry in file.files.iter().chain(file.inline_origins.iter()) {
        n += std::mem::size_of::<(u32, String)>() + MAP_ENTRY_OVERHEAD + entry.1.capacity();
    }
    for entry in file.cfi_stack_info.ranges_values() {
        let cfi = &entry.1;
        n += size_of_val(entry) + cfi.init.rules.capacity();
        n += cfi
            .add_rules
            .iter()
            .map(|r| size_of_val(r) + r.rules.capacity())
            .sum::<usize>();
    }
    for map in [&file.win_stack_framedata_info, &file.win_stack_fpo_info] {
        for entry in map.ranges_values() {
            // Program strings are short; the record itself dominates.
            n += size_of_val(entry) + 32;
        }
    }
    n as u64
}

#[cfg(test)]
mod tests {
    //! The index answers exactly as the fully parsed file does, for every record
    //! boundary of every `.sym` in the shared test data.

    use super::*;
    use crate::recorder::Recorder;
    use breakpad_symbols::SimpleModule;

    /// Every `.sym` file below `dir`. (A walk like `server/tests/layers.rs`'s, for
    /// another extension in another crate: too small to share or to pull a crate in.)
    fn sym_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sym_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "sym") {
                out.push(path);
            }
        }
    }

    /// Addresses around every record start and end, and between records.
    fn probe_addresses(index: &IndexedSym) -> Vec<u64> {
        let mut addrs = Vec::new();
        let ranges = index
            .funcs
            .iter()
            .chain(&index.cfi)
            .map(|r| (r.start, r.end()))
            .chain(
                index
                    .framedata
                    .iter()
                    .chain(&index.fpo)
                    .map(|w| (w.start, w.end())),
            )
            .chain(index.publics.iter().map(|p| (p.0, p.0)));
        for (start, end) in ranges {
            for a in [
                start.saturating_sub(1),
                start,
                start.saturating_add(1),
                start + (end - start) / 2,
                end,
                end.saturating_add(1),
            ] {
                addrs.push(a);
            }
        }
        addrs.sort_unstable();
        addrs.dedup();
        // Keep the test quick on the big files: every n-th address.
        let step = (addrs.len() / 20_000).max(1);
        addrs.into_iter().step_by(step).collect()
    }

    /// Asserts the index answers `fill_symbol` and `walk_frame` at `addr` (relative
    /// to `module`) as the fully parsed file does; returns the walk's result.
    fn assert_same_answers_at(
        full: &SymbolFile,
        index: &IndexedSym,
        module: &SimpleModule,
        addr: u64,
        what: &str,
    ) -> Option<()> {
        let instruction = module.base_address.unwrap_or(0) + addr;
        let (mut a, mut b) = (Recorder::at(instruction), Recorder::at(instruction));
        full.fill_symbol(module, &mut a);
        index.fill_symbol(module, &mut b);
        assert_eq!(a, b, "fill_symbol {what} at {addr:x}");
        let (mut a, mut b) = (Recorder::at(instruction), Recorder::at(instruction));
        let ra = full.walk_frame(module, &mut a);
        let rb = index.walk_frame(module, &mut b);
        // Registers are set in hash map order: compare as sets.
        a.calls.sort();
        b.calls.sort();
        assert_eq!((ra, &a), (rb, &b), "walk_frame {what} at {addr:x}");
        ra
    }

    /// A module loaded at 0x1000_0000.
    fn module_at_1000_0000() -> SimpleModule {
        SimpleModule {
            base_address: Some(0x1000_0000),
            ..SimpleModule::default()
        }
    }

    /// Asserts the index answers as the fully parsed file does at every probe
    /// address in `module`; returns how many it compared.
    fn assert_same_answers(
        full: &SymbolFile,
        index: &IndexedSym,
        module: &SimpleModule,
        what: &str,
    ) -> usize {
        let addrs = probe_addresses(index);
        for &addr in &addrs {
            assert_same_answers_at(full, index, module, addr, what);
        }
        addrs.len()
    }

    /// The index of `sym` (written to a temporary file) and its full parse.
    fn index_and_full(sym: &[u8]) -> (IndexedSym, SymbolFile) {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, sym).unwrap();
        let index = IndexedSym::build(file, 1 << 20).unwrap();
        (index, crate::supplier::parse_sym(sym).unwrap())
    }

    #[test]
    fn index_answers_like_the_full_parse_on_all_testdata_symbols() {
        let root = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/testdata"
        ));
        let mut files = Vec::new();
        sym_files(root, &mut files);
        assert!(files.len() >= 30, "{files:?}");
        let mut compared = 0usize;
        for path in files {
            let bytes = std::fs::read(&path).unwrap();
            let Ok(full) = crate::supplier::parse_sym(&bytes) else {
                // Not a symbol file the parser takes (e.g. under `extra/`).
                continue;
            };
            let index = IndexedSym::build(File::open(&path).unwrap(), 1 << 20).unwrap();
            compared += assert_same_answers(
                &full,
                &index,
                &module_at_1000_0000(),
                &path.display().to_string(),
            );
        }
        assert!(compared > 100_000, "{compared} addresses compared");
    }

    /// An INLINE_ORIGIN defined inside a FUNC block (older files) and again later:
    /// the later definition names the inlined function, as in the full parse.
    #[test]
    fn the_last_definition_of_an_inline_origin_counts() {
        let sym = b"MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 t\n\
            FILE 0 a.c\n\
            FUNC 1000 10 0 outer\n\
            INLINE_ORIGIN 1 first\n\
            INLINE 0 5 0 1 1004 4\n\
            1000 10 3 0\n\
            FILE 1 b.c\n\
            INLINE_ORIGIN 1 last\n";
        let (index, full) = index_and_full(sym);
        assert!(assert_same_answers(&full, &index, &module_at_1000_0000(), "inline origins") > 0);
        let mut frame = Recorder::at(0x1004);
        index.fill_symbol(&SimpleModule::default(), &mut frame);
        assert!(
            frame.calls.iter().any(|c| c.starts_with("inline last ")),
            "{frame:?}"
        );
    }

    /// STACK WIN records as Breakpad's parser reads them (shapes fuzzing found):
    /// at each case's address the full parse walks the frame, and so does the index.
    #[test]
    fn stack_win_records_are_read_as_breakpad_reads_them() {
        const PROGRAM: &str = "$T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + =";
        let cases = [
            (
                // A record whose type and program-string flag disagree is dropped:
                // it does not shorten the record it starts inside.
                "flag disagrees with type",
                format!(
                    "STACK WIN 4 1120 54 3 0 0 0 0 0 1 {PROGRAM}\n\
                     STACK WIN 4 1121 4b 2 0 0 4 0 0 5 {PROGRAM}\n"
                ),
                0x1121,
            ),
            (
                // Fields apart by several spaces: the shortened size is written
                // into the size field.
                "several spaces",
                "STACK WIN  0 1000 10  0 1 4 2 0 4 0 1\n\
                 STACK WIN 0 1008 8 0 0 4 0 0 4 0 0\n"
                    .to_owned(),
                0x1004,
            ),
            (
                // Tabs separate fields as spaces do.
                "tabs",
                format!(
                    "STACK WIN\t4\t1000\t10\t0\t0\t8\t0\t0\t0\t1\t{PROGRAM}\n\
                     STACK WIN 4 1008\t8 0 0 8 0 0 0 1 {PROGRAM}\n"
                ),
                0x1004,
            ),
            (
                // A range running past the end of the address space is dropped: it
                // does not shorten the record it starts inside.
                "range past the end",
                "STACK WIN 0 fffffffffffffff0 8 0 0 4 0 0 4 0 0\n\
                 STACK WIN 0 fffffffffffffff4 100 0 0 4 0 0 4 0 0\n"
                    .to_owned(),
                0xffff_ffff_ffff_fff5,
            ),
        ];
        let module = SimpleModule::default();
        for (what, records, addr) in cases {
            let sym =
                format!("MODULE windows x86 3249D99D0C4049318610F4E4FB0B69361 a.pdb\n{records}");
            let (index, full) = index_and_full(sym.as_bytes());
            assert!(assert_same_answers(&full, &index, &module, what) > 0);
            let walked = assert_same_answers_at(&full, &index, &module, addr, what);
            assert_eq!(walked, Some(()), "{what}");
        }
    }

    /// A STACK WIN line Breakpad's parser refuses (a two-digit type, a field too
    /// long) makes the index refuse the file too.
    #[test]
    fn a_stack_win_line_breakpad_refuses_is_refused() {
        let module = "MODULE windows x86 3249D99D0C4049318610F4E4FB0B69361 a.pdb\n";
        for line in [
            "STACK WIN 04 1000 10 0 0 4 0 0 4 0 0\n",
            "STACK WIN 0 1000 000000010 0 0 4 0 0 4 0 0\n",
            "STACK WIN 0 1000 10 0 0 4 0 0 4 0\n",
        ] {
            let sym = format!("{module}{line}");
            assert!(
                crate::supplier::parse_sym(sym.as_bytes()).is_err(),
                "{line}"
            );
            let mut file = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut file, sym.as_bytes()).unwrap();
            assert!(IndexedSym::build(file, 1 << 20).is_err(), "{line}");
        }
    }

    /// Breakpad's parser takes tabs between the fields of every record (and after
    /// its keyword) as it takes spaces: so does the index.
    #[test]
    fn tabs_separate_fields_as_spaces_do() {
        let sym = b"MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 t\n\
            FILE\t0\ta.c\n\
            FUNC\tm\t1000\t20\t0\touter\n\
            1000\t10 3\t0\n\
            1010 10\t4 0\n\
            INLINE_ORIGIN\t1\tinner\n\
            PUBLIC\t1030\t0\tpub\n\
            STACK CFI INIT\t1000\t20\t.cfa: $rsp 8 + .ra: .cfa -8 + ^\n\
            STACK CFI\t1004\t.cfa: $rsp 16 +\n\
            STACK CFI 1008 .cfa: $rsp 24 +\n";
        let (index, full) = index_and_full(sym);
        assert!(assert_same_answers(&full, &index, &module_at_1000_0000(), "tabs") > 0);
        let module = SimpleModule::default();
        let mut frame = Recorder::at(0x1014);
        index.fill_symbol(&module, &mut frame);
        assert_eq!(
            frame.calls,
            ["function outer 1000 0", "file a.c 4 1010"],
            "{frame:?}"
        );
        let mut frame = Recorder::at(0x1030);
        index.fill_symbol(&module, &mut frame);
        assert_eq!(frame.calls, ["function pub 1030 0"], "{frame:?}");
        // The rule at 1004 (after a tab) applies: the CFA is $rsp + 16.
        let mut walker = Recorder::at(0x1006);
        assert_eq!(index.walk_frame(&module, &mut walker), Some(()));
        assert!(
            walker.calls.contains(&"cfa 7fff00000310".to_owned()),
            "{walker:?}"
        );
    }

    /// A FUNC or STACK CFI INIT record whose range runs past the end of the address
    /// space is dropped with its lines, as Breakpad's parser drops it; the file
    /// still loads.
    #[test]
    fn records_past_the_address_space_are_dropped() {
        let sym = b"MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 t\n\
            FILE 0 a.c\n\
            FUNC fffffffffffffff0 100 0 past_the_end\n\
            fffffffffffffff0 10 1 0\n\
            FUNC 1000 10 0 inside\n\
            1000 10 2 0\n\
            STACK CFI INIT fffffffffffffff0 100 .cfa: $rsp 8 + .ra: .cfa -8 + ^\n\
            STACK CFI fffffffffffffff4 .cfa: $rsp 16 +\n\
            STACK CFI INIT 1000 10 .cfa: $rsp 8 + .ra: .cfa -8 + ^\n";
        let (index, full) = index_and_full(sym);
        assert!(assert_same_answers(&full, &index, &module_at_1000_0000(), "past the end") > 0);
        let module = SimpleModule::default();
        for addr in [0xffff_ffff_ffff_fff4, 0x1004] {
            assert_eq!(
                assert_same_answers_at(&full, &index, &module, addr, "past the end"),
                (addr == 0x1004).then_some(()),
                "{addr:x}"
            );
        }
        let mut frame = Recorder::at(0x1004);
        index.fill_symbol(&module, &mut frame);
        assert_eq!(frame.calls, ["function inside 1000 0", "file a.c 2 1000"]);
    }
}
