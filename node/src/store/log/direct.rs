//! Durable writes to the open segment in one system call: the writer's own
//! descriptor of it is opened `O_DIRECT | O_DSYNC`, so a write returns only
//! once its data is on stable storage (POSIX synchronized I/O data
//! integrity, the guarantee of `fdatasync`), without a trip through the page
//! cache and a separate flush. On the 2-core VMs this project is measured on,
//! a 4 KiB `O_DIRECT | O_DSYNC` write took about 0.17 ms where a buffered
//! write and its `fdatasync` took about 0.4 ms (`dd`, 2,000 writes each), and
//! a follower's sync is on the path of every claim.
//!
//! Direct I/O wants offsets, lengths and buffers aligned to the device's
//! block. A write therefore starts at the block where the segment's written
//! part ends, rewriting that block's bytes (kept here), and is padded with
//! zeros to a whole block; the segment was zero-filled when it was prepared,
//! so the padding changes nothing on disk and recovery still finds the end
//! where the zeros begin. A partial block rewritten this way is no more at
//! risk than under buffered writes, whose writeback also rewrites whole pages.
//!
//! Where the file system refuses direct I/O (tmpfs, some overlay mounts) or
//! the segment size is not a whole number of blocks, the writer keeps
//! buffered writes and `fdatasync`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The alignment used for every direct write: the largest logical block
/// size in common use, so it suits 512-byte and 4 KiB devices alike.
pub const BLOCK: u64 = 4096;

pub struct Direct {
    file: File,
    /// The bytes of the segment's last, partial block that are written
    /// already: the next write starts at that block, so it carries them again.
    tail: Vec<u8>,
    /// Room for an aligned copy of one write.
    scratch: Vec<u8>,
}

/// Whether direct I/O is refused for a reason that only says it is not
/// supported here (rather than that the disk failed).
pub fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

impl Direct {
    /// Direct writes to the segment at `path`, whose written part ends at
    /// `end`, read back through `file`; None where they cannot be had.
    pub fn open(path: &Path, file: &File, end: u64, capacity: u64) -> io::Result<Option<Direct>> {
        if !capacity.is_multiple_of(BLOCK) {
            return Ok(None);
        }
        let direct = match OpenOptions::new().write(true).custom_flags(libc::O_DIRECT | libc::O_DSYNC).open(path) {
            Ok(direct) => direct,
            Err(e) if unsupported(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut tail = vec![0; (end % BLOCK) as usize];
        file.read_exact_at(&mut tail, end - end % BLOCK)?;
        Ok(Some(Direct { file: direct, tail, scratch: Vec::new() }))
    }

    /// Write `bytes` where the written part ends (`at`), and return once they
    /// are on stable storage.
    pub fn write(&mut self, bytes: &[u8], at: u64) -> io::Result<()> {
        let block = BLOCK as usize;
        let start = at - self.tail.len() as u64;
        let len = self.tail.len() + bytes.len();
        let padded = len.next_multiple_of(block);
        self.scratch.clear();
        self.scratch.resize(padded + block, 0);
        let skip = self.scratch.as_ptr().align_offset(block);
        let buf = &mut self.scratch[skip..skip + padded];
        buf[..self.tail.len()].copy_from_slice(&self.tail);
        buf[self.tail.len()..len].copy_from_slice(bytes);
        self.file.write_all_at(buf, start)?;
        let kept = len - len % block;
        self.tail.clear();
        self.tail.extend_from_slice(&buf[kept..len]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_where_they_belong_and_keep_the_zeros_after_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("segment");
        let capacity = 4 * BLOCK;
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("file");
        file.write_all_at(&vec![0; capacity as usize], 0).expect("zeros");
        file.write_all_at(b"head", 0).expect("head");
        let Some(mut direct) = Direct::open(&path, &file, 4, capacity).expect("open") else {
            eprintln!("this file system refuses direct I/O; the buffered path covers it");
            return;
        };
        let mut expected = b"head".to_vec();
        let mut at = 4u64;
        // Within a block, across a boundary, and exactly to one.
        for len in [10usize, 5000, (2 * BLOCK as usize) - 5014] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            direct.write(&bytes, at).expect("write");
            expected.extend_from_slice(&bytes);
            at += len as u64;
        }
        let mut on_disk = vec![0; capacity as usize];
        file.read_exact_at(&mut on_disk, 0).expect("read");
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
        assert!(on_disk[expected.len()..].iter().all(|b| *b == 0), "zeros after the end");
        // Reopened where the written part ends, it carries the partial block on.
        let mut reopened = Direct::open(&path, &file, at, capacity).expect("reopen").expect("direct");
        reopened.write(b"more", at).expect("write");
        file.read_exact_at(&mut on_disk, 0).expect("read");
        expected.extend_from_slice(b"more");
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
    }

    #[test]
    fn a_segment_not_made_of_whole_blocks_is_written_buffered() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("segment");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("file");
        assert!(Direct::open(&path, &file, 0, 256).expect("open").is_none());
    }
}
