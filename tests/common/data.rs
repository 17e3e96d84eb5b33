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

/// Files `/v/f0` .. `/v/f{n-1}` without vectors; their inode numbers.
pub fn empty_files(fs: &vexfs::fs::core::Fs, n: usize) -> Vec<u32> {
    use vexfs::fs::namespace::NewNode;
    let ctx = vexfs::fs::perm::Ctx::root();
    let d = fs.create(&ctx, 1, b"v", 0o755, NewNode::Dir).unwrap();
    (0..n)
        .map(|i| {
            let name = format!("f{i}");
            fs.create(&ctx, d.ino.into(), name.as_bytes(), 0o644, NewNode::File)
                .unwrap()
                .ino
        })
        .collect()
}

/// A file `/v/f{i}` for each vector of `data` ([`empty_files`]), attached
/// in `collection` in order; their inode numbers.
pub fn files_with_vectors(fs: &vexfs::fs::core::Fs, collection: &str, data: &[Vec<f32>]) -> Vec<u32> {
    let ctx = vexfs::fs::perm::Ctx::root();
    let inos = empty_files(fs, data.len());
    for (&i, v) in inos.iter().zip(data) {
        fs.set_vector(&ctx, i.into(), collection, v).unwrap();
    }
    inos
}
