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
    /// `parts` one after the other, then zeros up to a multiple of `pad_to`
    /// (a direct-I/O write covers whole blocks), in one allocation: each
    /// byte is written once, no buffer is zeroed first and then overwritten.
    pub fn concat(parts: &[&[u8]], pad_to: usize) -> AlignedBuf {
        let data: usize = parts.iter().map(|p| p.len()).sum();
        let len = round_up(data, pad_to.max(1));
        let cap = round_up(len.max(1), DIRECT_IO_ALIGN);
        let layout = Layout::from_size_align(cap, DIRECT_IO_ALIGN).expect("aligned layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else { alloc::handle_alloc_error(layout) };
        let mut at = 0;
        for part in parts {
            // SAFETY: `at + part.len() <= data <= cap`; a fresh allocation
            // does not overlap the caller's slices.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), ptr.as_ptr().add(at), part.len()) };
            at += part.len();
        }
        // SAFETY: `[data, cap)` lies inside the allocation. Zeroing up to
        // `cap` (not just `len`) leaves no uninitialized byte behind.
        unsafe { std::ptr::write_bytes(ptr.as_ptr().add(data), 0, cap - data) };
        AlignedBuf { ptr, len, cap }
    }

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

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr points at cap >= len initialized bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
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
        // SAFETY: allocated in `concat` or `zeroed` with this very layout.
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

    /// Buffers are aligned, writable, and keep their alignment as `Bytes`.
    #[test]
    fn aligned_and_writable() {
        let mut b = AlignedBuf::concat(&[&[1u8; 3]], DIRECT_IO_ALIGN);
        assert_eq!(b.as_ref().len(), DIRECT_IO_ALIGN);
        b.as_mut_slice()[0] = 7;
        let bytes = b.freeze();
        assert_eq!(bytes.as_ptr() as usize % DIRECT_IO_ALIGN, 0);
        assert_eq!(bytes[0], 7);
    }

    /// Parts land in order, padding is zeros up to the requested multiple,
    /// and an empty buffer is still a valid allocation.
    #[test]
    fn concat_pads_with_zeros() {
        let b = AlignedBuf::concat(&[b"ab", &[], b"cde"], 4);
        assert_eq!(b.as_ref(), b"abcde\0\0\0");
        let b = AlignedBuf::concat(&[&[9u8; 5000]], DIRECT_IO_ALIGN);
        assert_eq!(b.as_ref().len(), 8192);
        assert!(b.as_ref()[..5000].iter().all(|&x| x == 9) && b.as_ref()[5000..].iter().all(|&x| x == 0));
        assert_eq!(AlignedBuf::concat(&[b"xyz"], 1).as_ref(), b"xyz");
        assert!(AlignedBuf::concat(&[], 512).as_ref().is_empty());
        assert_eq!(AlignedBuf::concat(&[b"q"], 1).freeze().as_ptr() as usize % DIRECT_IO_ALIGN, 0);
    }
}
