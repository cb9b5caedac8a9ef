//! Push decoding benchmarks (placeholder; filled in below).

fn main() {}
