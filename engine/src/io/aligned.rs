//! Heap buffers aligned for direct I/O (O_DIRECT needs the memory, the file
//! offset and the length aligned to the device's logical block).

use bytes::Bytes;
use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment of direct-I/O buffers, offsets and lengths. 4096 covers every
/// common logical block size (ext4 on this kind of host needs 512).
pub const DIRECT_IO_ALIGN: usize = 4096;

/// A buffer whose start is `DIRECT_IO_ALIGN`-aligned, every byte of it
/// initialized.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    /// Bytes exposed.
    len: usize,
    /// Bytes allocated: `len` rounded up to the alignment (at least one block).
    cap: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> AlignedBuf {
        let cap = round_up(len.max(1), DIRECT_IO_ALIGN);
        let layout = Layout::from_size_align(cap, DIRECT_IO_ALIGN).expect("aligned layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(ptr) else { alloc::handle_alloc_error(layout) };
        AlignedBuf { ptr, len, cap }
    }

    /// Where the kernel may write (through a raw pointer, while no slice of
    /// the buffer is alive), e.g. for a read shared by several operations.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Hands the buffer to `Bytes` without copying; it stays aligned.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr points at cap >= len initialized bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.cap, DIRECT_IO_ALIGN).expect("aligned layout");
        // SAFETY: allocated in `zeroed` with this very layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

pub fn round_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

pub fn round_down(n: u64, align: u64) -> u64 {
    n / align * align
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buffers are aligned, zeroed, and keep their alignment as `Bytes`.
    #[test]
    fn aligned_and_zeroed() {
        let b = AlignedBuf::zeroed(3);
        assert_eq!(b.as_ref(), &[0, 0, 0]);
        let bytes = b.freeze();
        assert_eq!(bytes.as_ptr() as usize % DIRECT_IO_ALIGN, 0);
        assert_eq!(&bytes[..], &[0, 0, 0]);
        assert!(AlignedBuf::zeroed(0).as_ref().is_empty());
    }
}
