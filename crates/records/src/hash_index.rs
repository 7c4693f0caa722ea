//! Positions in a list found by a key's 64-bit hash: (hash, position) pairs sorted, 16
//! bytes an entry, where a map keyed by owned names would hold every name a second time
//! (100,000 domains: a few MB against tens). Two keys may share a hash, so the caller
//! checks each candidate against the list.

use std::hash::{BuildHasher as _, Hash, RandomState};

#[derive(Debug, Default)]
pub(crate) struct HashIndex {
    sorted: Vec<(u64, usize)>,
    hasher: RandomState,
}

impl HashIndex {
    /// The index of `(position, key)` pairs.
    pub(crate) fn new<K: Hash>(keys: impl IntoIterator<Item = (usize, K)>) -> HashIndex {
        let hasher = RandomState::new();
        let mut sorted: Vec<(u64, usize)> = keys
            .into_iter()
            .map(|(at, key)| (hasher.hash_one(key), at))
            .collect();
        // By hash, then by position: the candidates of a key come in list order.
        sorted.sort_unstable();
        HashIndex { sorted, hasher }
    }

    /// The positions whose key hashes like `key` (its own, and rarely another's), in
    /// ascending order.
    pub(crate) fn candidates<K: Hash>(&self, key: K) -> impl Iterator<Item = usize> + '_ {
        let hash = self.hasher.hash_one(key);
        let first = self.sorted.partition_point(|&(h, _)| h < hash);
        self.sorted[first..]
            .iter()
            .take_while(move |&&(h, _)| h == hash)
            .map(|&(_, at)| at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_finds_its_positions_in_order_and_others_find_none() {
        let keys = ["b", "a", "b", "c", "a"];
        let index = HashIndex::new(keys.iter().enumerate().map(|(at, k)| (at, *k)));
        let found =
            |k: &str| -> Vec<usize> { index.candidates(k).filter(|&at| keys[at] == k).collect() };
        assert_eq!(found("a"), [1, 4]);
        assert_eq!(found("b"), [0, 2]);
        assert_eq!(found("c"), [3]);
        assert!(found("d").is_empty());
        assert_eq!(HashIndex::default().candidates("a").count(), 0);
    }
}
