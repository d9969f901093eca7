//! Log-bucketed histograms' bucket arithmetic, for the latency of test streams
//! (`streams::check`) and the delays of test runs (`testrun::tally`): `2^sub_bits` buckets per
//! octave of nanoseconds (a value's bucket middle is within `1 / 2^(sub_bits + 1)` of it), the
//! values below `2^sub_bits` exact. Each user keeps its own precision and counts.

/// How many buckets cover every `u64` at `sub_bits` buckets-per-octave bits.
pub const fn buckets(sub_bits: u32) -> usize {
    64 << sub_bits
}

/// The bucket of `ns`.
pub fn bucket_of(ns: u64, sub_bits: u32) -> usize {
    if ns < (1 << sub_bits) {
        return ns as usize;
    }
    let octave = 63 - ns.leading_zeros(); // ≥ sub_bits
    let sub = (ns >> (octave - sub_bits)) & ((1 << sub_bits) - 1);
    (((octave - sub_bits + 1) << sub_bits) as usize) + sub as usize
}

/// The middle of bucket `b`.
pub fn value_of(b: usize, sub_bits: u32) -> u64 {
    if b < (1 << sub_bits) {
        return b as u64;
    }
    let octave = (b >> sub_bits) as u32 + sub_bits - 1;
    let sub = (b & ((1 << sub_bits) - 1)) as u64;
    let low = (1u64 << octave) + (sub << (octave - sub_bits));
    low + (1u64 << (octave - sub_bits)) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_middle_is_close() {
        for sub_bits in [3, 4] {
            let half_width = 1.0 / f64::from(1u32 << (sub_bits + 1));
            for ns in (0..100_000u64).chain([1 << 40, (1 << 40) + 12_345, u64::MAX / 3]) {
                let b = bucket_of(ns, sub_bits);
                assert!(b < buckets(sub_bits), "{ns}");
                let middle = value_of(b, sub_bits);
                if ns < (1 << sub_bits) {
                    assert_eq!(middle, ns);
                } else {
                    let error = (middle as f64 - ns as f64).abs() / ns as f64;
                    assert!(error <= half_width, "{ns}: {middle} ({error})");
                }
            }
            // Buckets are in value order.
            assert!((1..buckets(sub_bits) - 64)
                .all(|b| value_of(b, sub_bits) > value_of(b - 1, sub_bits)));
        }
    }
}
