//! Which parameters share a gradient bucket, and where each sits in its bucket's flat
//! buffer: PyTorch DDP's assignment, in reverse parameter order (roughly the order the
//! backward pass finishes the gradients), one dtype per bucket, a small first bucket so
//! that the first reduction starts early.

use std::collections::HashMap;

use sinew_autograd::{Param, VarId};
use sinew_tensor::DType;

/// PyTorch's `bucket_cap_mb` default: 25 MiB.
pub const DEFAULT_BUCKET_CAP_BYTES: usize = 25 * 1024 * 1024;

/// PyTorch's first bucket: at most 1 MiB, so that the last layer's gradients are on the
/// wire while the rest of the backward pass runs.
const FIRST_BUCKET_CAP_BYTES: usize = 1024 * 1024;

/// One parameter's place in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The parameter's leaf id, the key of its gradient.
    pub id: VarId,
    /// Its first element in the bucket's flat buffer.
    pub offset: usize,
    /// Its shape.
    pub dims: Vec<usize>,
}

impl Slot {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A bucket: parameters of one dtype whose gradients are reduced as one flat buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The gradients' dtype.
    pub dtype: DType,
    /// Its parameters, in the order they were assigned.
    pub slots: Vec<Slot>,
    /// Elements in the flat buffer.
    pub len: usize,
}

/// Every parameter's bucket.
#[derive(Debug, Clone, Default)]
pub struct BucketPlan {
    /// The buckets, in the order their reductions are started.
    pub buckets: Vec<Bucket>,
    /// Bucket and slot of each parameter.
    pub place: HashMap<VarId, (usize, usize)>,
}

impl BucketPlan {
    /// Assigns `params` to buckets of at most `cap_bytes` (a parameter larger than that
    /// gets a bucket of its own), walking them from the last to the first; the first
    /// bucket is capped at 1 MiB too. A parameter listed twice (shared weights) is placed
    /// once.
    pub fn new(params: &[Param], cap_bytes: usize) -> BucketPlan {
        let mut plan = BucketPlan::default();
        // the open bucket of each dtype
        let mut open: HashMap<DType, usize> = HashMap::new();
        for p in params.iter().rev() {
            if plan.place.contains_key(&p.id()) {
                continue;
            }
            let value = p.value();
            let (dtype, dims) = (value.dtype(), value.dims().to_vec());
            let b = *open.entry(dtype).or_insert_with(|| {
                plan.buckets.push(Bucket { dtype, slots: Vec::new(), len: 0 });
                plan.buckets.len() - 1
            });
            let bucket = &mut plan.buckets[b];
            let slot = Slot { id: p.id(), offset: bucket.len, dims };
            bucket.len += slot.len();
            bucket.slots.push(slot);
            plan.place.insert(p.id(), (b, bucket.slots.len() - 1));
            let cap = if b == 0 { cap_bytes.min(FIRST_BUCKET_CAP_BYTES) } else { cap_bytes };
            if bucket.len * dtype.size_in_bytes() >= cap {
                open.remove(&dtype);
            }
        }
        plan
    }

    /// The number of parameters placed.
    pub fn num_params(&self) -> usize {
        self.place.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_tensor::Tensor;

    fn param(n: usize, dtype: DType) -> Param {
        Param::new("p", Tensor::zeros_dtype(&[n], dtype))
    }

    #[test]
    fn reverse_order_caps_and_dtypes() {
        // 4-byte floats: caps of 40 bytes = 10 elements
        let ps = [
            param(3, DType::F32),
            param(4, DType::F32),
            param(2, DType::F64),
            param(6, DType::F32),
            param(12, DType::F32),
        ];
        let plan = BucketPlan::new(&ps, 40);
        let summary: Vec<(DType, Vec<usize>)> =
            plan.buckets.iter().map(|b| (b.dtype, b.slots.iter().map(Slot::len).collect())).collect();
        // the 12-element parameter fills bucket 0 alone; 6 + 4 = 10 closes bucket 1; the f64
        // parameter has a bucket of its own; the 3 left opens a last f32 bucket
        assert_eq!(
            summary,
            [(DType::F32, vec![12]), (DType::F32, vec![6, 4]), (DType::F64, vec![2]), (DType::F32, vec![3])]
        );
        assert_eq!(plan.buckets[1].slots[1].offset, 6);
        assert_eq!(plan.place[&ps[1].id()], (1, 1));
        assert_eq!(plan.num_params(), 5);
    }

    #[test]
    fn shared_parameters_are_placed_once_and_the_first_bucket_is_small() {
        let big = param(300_000, DType::F32); // 1.2 MB: over the first bucket's 1 MiB
        let small = param(10, DType::F32);
        let plan =
            BucketPlan::new(&[small.clone(), big.clone(), small.clone(), big], DEFAULT_BUCKET_CAP_BYTES);
        assert_eq!(plan.num_params(), 2);
        assert_eq!(plan.buckets.len(), 2);
        assert_eq!(plan.buckets[0].len, 300_000);
        assert_eq!(plan.buckets[1].slots[0].id, small.id());
    }
}
