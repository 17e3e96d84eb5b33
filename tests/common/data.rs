//! Deterministic vector data for the tests (no files, no downloads).

/// Deterministic pseudo-random numbers (splitmix64), no dependencies.
pub struct Rng(u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn gauss(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-7), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// `n` vectors around `clusters` Gaussian centres.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut r = Rng(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| r.gauss() * 4.0).collect())
        .collect();
    (0..n)
        .map(|i| centres[i % clusters].iter().map(|c| c + r.gauss()).collect())
        .collect()
}

/// A file `/v/f{i}` for each vector of `data`, attached in `collection`;
/// their inode numbers.
pub fn files_with_vectors(fs: &vexfs::fs::core::Fs, collection: &str, data: &[Vec<f32>]) -> Vec<u32> {
    use vexfs::fs::namespace::NewNode;
    let ctx = vexfs::fs::perm::Ctx::root();
    let d = fs.create(&ctx, 1, b"v", 0o755, NewNode::Dir).unwrap();
    data.iter()
        .enumerate()
        .map(|(i, v)| {
            let f = fs
                .create(&ctx, d.ino.into(), format!("f{i}").as_bytes(), 0o644, NewNode::File)
                .unwrap();
            fs.set_vector(&ctx, f.ino.into(), collection, v).unwrap();
            f.ino
        })
        .collect()
}
