// Counter-based random bits, the WGSL twin of hash32 / counterUniform in src/engine/rng.ts.
// Functions only: modules that need randomness are built by concatenating this file in front of theirs.

// lowbias32 integer hash; u32 multiplication wraps exactly like Math.imul.
fn hash32(value: u32) -> u32 {
  var x = value;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// The 32 random bits of element `index` in stream `seed`: counterUniform(seed, index) * 2^32.
fn counter_bits(seed: u32, index: u32) -> u32 {
  return hash32(hash32(seed) ^ index);
}

// Dropout keeps element `index` iff counterUniform(seed, index) >= p, i.e. iff its bits reach
// keep_threshold = ceil(p * 2^32). Comparing integers keeps the GPU mask bit-identical to the CPU's.
fn dropout_keep(seed: u32, index: u32, keep_threshold: u32) -> bool {
  return counter_bits(seed, index) >= keep_threshold;
}
