//! Connection slots in fixed-size chunks: growing never moves existing slots and
//! never over-allocates by more than one chunk (a doubling `Vec` can hold up to twice
//! the memory the connections need, which matters at 100,000 idle connections).

use std::ops::{Index, IndexMut};

const CHUNK: usize = 256;

pub(crate) struct Slab<T> {
    chunks: Vec<Box<[Option<T>]>>,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab { chunks: Vec::new() }
    }

    /// Number of slots available (a multiple of the chunk size).
    pub(crate) fn len(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Makes sure slot `i` exists.
    pub(crate) fn ensure(&mut self, i: usize) {
        while self.len() <= i {
            self.chunks.push(
                (0..CHUNK)
                    .map(|_| None)
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            );
        }
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Option<T>> {
        self.chunks.get_mut(i / CHUNK).map(|c| &mut c[i % CHUNK])
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Option<T>> {
        self.chunks.get(i / CHUNK).map(|c| &c[i % CHUNK])
    }
}

impl<T> Index<usize> for Slab<T> {
    type Output = Option<T>;
    fn index(&self, i: usize) -> &Option<T> {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut Option<T> {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_in_chunks_without_moving_slots() {
        let mut s: Slab<u32> = Slab::new();
        assert_eq!(s.len(), 0);
        s.ensure(0);
        assert_eq!(s.len(), CHUNK);
        s[3] = Some(7);
        let p = &s[3] as *const Option<u32>;
        s.ensure(10 * CHUNK);
        assert_eq!(s.len(), 11 * CHUNK);
        assert_eq!(&s[3] as *const Option<u32>, p, "slots never move");
        assert_eq!(s.get(3), Some(&Some(7)));
        assert!(s.get(11 * CHUNK).is_none());
    }
}
