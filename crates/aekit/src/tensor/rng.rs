//! Seeded randomness. Every stochastic function takes one of these, so a run
//! is reproducible from the seed recorded in its run directory.

use rand::SeedableRng;

/// The generator used everywhere in aekit (fast, small state, seedable).
pub type Rng = rand_xoshiro::Xoshiro256PlusPlus;

/// A generator from a seed.
pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// A seeded Fisher-Yates shuffle of `0..n` in place.
pub fn shuffle(idx: &mut [usize], rng: &mut Rng) {
    use rand::seq::SliceRandom;
    idx.shuffle(rng);
}
