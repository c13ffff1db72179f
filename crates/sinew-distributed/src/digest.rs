//! A digest of a module's parameters and buffers, to check that replicas are bit-identical.

use sinew_nn::Module;
use sinew_tensor::Tensor;

/// FNV-1a, 64 bits: enough to tell replicas apart, and needs no dependency.
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn tensor_bytes(h: &mut Fnv, t: &Tensor) {
    for &d in t.dims() {
        h.bytes(&(d as u64).to_le_bytes());
    }
    h.bytes(&t.to_le_bytes());
}

/// A 64-bit digest of `module`'s state dict: names, shapes, dtypes and the exact bits of
/// every value. Equal digests on two replicas mean (but for a 2⁻⁶⁴ chance) bit-identical
/// parameters and buffers; one differing bit changes it.
///
/// ```
/// use sinew_distributed::state_digest;
/// use sinew_nn::Linear;
/// use sinew_tensor::Generator;
/// let a = Linear::new(3, 2, &mut Generator::new(0));
/// let b = Linear::new(3, 2, &mut Generator::new(0));
/// assert_eq!(state_digest(&a), state_digest(&b));
/// b.weight.set_value(b.weight.value().add_scalar(1e-7));
/// assert_ne!(state_digest(&a), state_digest(&b));
/// ```
pub fn state_digest(module: &(impl Module + ?Sized)) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    for (name, t) in module.state_dict() {
        h.bytes(name.as_bytes());
        h.bytes(&[0, t.dtype() as u8]);
        tensor_bytes(&mut h, &t);
    }
    h.0
}
