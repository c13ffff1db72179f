//! Round trips, bit for bit, under proptest: any state dict (f32, f64, i64; any shape up
//! to 4-d including empty and zero-sized dimensions; every bit pattern, NaN payloads and
//! subnormals included; any printable names) through safetensors and through
//! checkpoints, checkpoints with every optional part; and 4M-element tensors through both.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sinew_optim::{GroupState, OptimizerState, SchedulerState, StateTensor};
use sinew_serialize::{Checkpoint, StateDict, read_safetensors, write_safetensors};
use sinew_tensor::{DType, GeneratorState, Tensor};

/// A tensor's dtype, shape and exact bits.
fn fingerprint(t: &Tensor) -> (DType, Vec<usize>, Vec<u64>) {
    let bits = match t.dtype() {
        DType::F32 => t.to_vec::<f32>().iter().map(|v| v.to_bits() as u64).collect(),
        DType::F64 => t.to_vec::<f64>().iter().map(|v| v.to_bits()).collect(),
        DType::I64 => t.to_vec::<i64>().iter().map(|&v| v as u64).collect(),
    };
    (t.dtype(), t.dims().to_vec(), bits)
}

fn assert_same(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        assert!(fingerprint(ta) == fingerprint(tb), "{na}: {ta:?} vs {tb:?}");
    }
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, 0..=4)
}

/// A tensor of any dtype whose elements are arbitrary bit patterns.
fn tensor() -> impl Strategy<Value = Tensor> {
    (shape(), 0..3u8).prop_flat_map(|(shape, dtype)| {
        let n: usize = shape.iter().product();
        prop::collection::vec(any::<u64>(), n).prop_map(move |bits| {
            match dtype {
                0 => Tensor::from_vec(
                    bits.iter().map(|&b| f32::from_bits(b as u32)).collect::<Vec<_>>(),
                    &shape,
                ),
                1 => Tensor::from_vec(bits.iter().map(|&b| f64::from_bits(b)).collect::<Vec<_>>(), &shape),
                _ => Tensor::from_vec(bits.iter().map(|&b| b as i64).collect::<Vec<_>>(), &shape),
            }
            .unwrap()
        })
    })
}

/// Named tensors with unique (suffixed) printable names, possibly none.
fn state_dict() -> impl Strategy<Value = Vec<(String, Tensor)>> {
    prop::collection::vec(("\\PC{0,12}", tensor()), 0..6)
        .prop_map(|v| v.into_iter().enumerate().map(|(i, (name, t))| (format!("{name}.{i}"), t)).collect())
}

fn state_tensor() -> impl Strategy<Value = StateTensor> {
    (shape(), any::<bool>()).prop_flat_map(|(shape, double)| {
        let n: usize = shape.iter().product();
        prop::collection::vec(any::<u64>(), n).prop_map(move |bits| {
            if double {
                StateTensor::F64 {
                    shape: shape.clone(),
                    data: bits.iter().map(|&b| f64::from_bits(b)).collect(),
                }
            } else {
                StateTensor::F32 {
                    shape: shape.clone(),
                    data: bits.iter().map(|&b| f32::from_bits(b as u32)).collect(),
                }
            }
        })
    })
}

fn optimizer_state() -> impl Strategy<Value = OptimizerState> {
    (
        "[a-z]{0,8}",
        any::<u64>(),
        prop::collection::vec(any::<u64>(), 0..4),
        prop::collection::vec((any::<f64>(), any::<f64>()), 0..3),
        prop::collection::vec(prop::collection::vec(("[a-z_]{0,10}", state_tensor()), 0..3), 0..4),
    )
        .prop_map(|(kind, step, param_steps, groups, buffers)| OptimizerState {
            kind,
            step,
            param_steps,
            groups: groups.into_iter().map(|(lr, weight_decay)| GroupState { lr, weight_decay }).collect(),
            buffers,
        })
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        state_dict(),
        prop::option::of(optimizer_state()),
        prop::option::of((any::<usize>(), prop::collection::vec(any::<f64>(), 0..3))),
        any::<u64>(),
        any::<u64>(),
        prop::option::of((any::<[u8; 32]>(), any::<u64>(), any::<u128>())),
        prop::collection::btree_map("\\PC{0,10}", "\\PC{0,20}", 0..4),
    )
        .prop_map(|(model, optimizer, scheduler, epoch, step, rng, metadata)| Checkpoint {
            model: StateDict::from(model),
            optimizer,
            scheduler: scheduler.map(|(step, base_lrs)| SchedulerState { step, base_lrs }),
            epoch,
            step,
            rng: rng.map(|(seed, stream, word_pos)| GeneratorState { seed, stream, word_pos }),
            metadata,
        })
}

/// Bit-exact equality of two checkpoints: tensors by bits, the rest by its encoding
/// (float fields may be NaN, so `PartialEq` would not do).
fn assert_same_checkpoint(a: &Checkpoint, b: &Checkpoint) {
    assert_same(a.model.as_slice(), b.model.as_slice());
    assert_eq!((a.epoch, a.step, a.rng, &a.metadata), (b.epoch, b.step, b.rng, &b.metadata));
    assert_eq!(a.optimizer.is_some(), b.optimizer.is_some());
    assert_eq!(a.scheduler.as_ref().map(|s| s.step), b.scheduler.as_ref().map(|s| s.step));
    assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn safetensors_round_trip(state in state_dict()) {
        let bytes = write_safetensors(&state).unwrap();
        assert_same(&state, &read_safetensors(&bytes).unwrap());
    }

    #[test]
    fn checkpoint_round_trip(c in checkpoint()) {
        let bytes = c.to_bytes().unwrap();
        let back = Checkpoint::from_bytes(&bytes).unwrap();
        assert_same_checkpoint(&c, &back);
        // encoding is deterministic: the same checkpoint gives the same bytes
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    /// Non-contiguous tensors (transposed views) are saved in row-major order.
    #[test]
    fn views_are_saved_as_their_values(rows in 1usize..6, cols in 1usize..6) {
        let t = Tensor::arange(0.0, (rows * cols) as f64, 1.0).reshape(&[rows, cols]).t();
        let state = vec![("t".to_string(), t.clone())];
        let via_ckpt = Checkpoint { model: StateDict::from(state.clone()), ..Default::default() };
        let back = Checkpoint::from_bytes(&via_ckpt.to_bytes().unwrap()).unwrap();
        assert_same(&state, back.model.as_slice());
        assert_same(&state, &read_safetensors(&write_safetensors(&state).unwrap()).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    /// 4,194,304 elements (16 MB as f32, 32 MB as f64/i64) through both formats.
    #[test]
    fn large_tensor_round_trip(dtype in 0..3u8, seed in any::<u64>()) {
        const N: usize = 1 << 22;
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let t = match dtype {
            0 => Tensor::from_vec((0..N).map(|_| f32::from_bits(next() as u32)).collect::<Vec<_>>(), &[1024, 4096]),
            1 => Tensor::from_vec((0..N).map(|_| f64::from_bits(next())).collect::<Vec<_>>(), &[N]),
            _ => Tensor::from_vec((0..N).map(|_| next() as i64).collect::<Vec<_>>(), &[2, 1024, 2048]),
        }
        .unwrap();
        let state = vec![("big".to_string(), t), ("small".to_string(), Tensor::scalar(1i64))];
        assert_same(&state, &read_safetensors(&write_safetensors(&state).unwrap()).unwrap());
        let c = Checkpoint { model: StateDict::from(state.clone()), step: seed, ..Default::default() };
        let back = Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap();
        assert_same(&state, back.model.as_slice());
        prop_assert_eq!(back.step, seed);
    }
}

#[test]
fn empty_tensors_and_empty_checkpoints() {
    let state = vec![
        ("none".to_string(), Tensor::zeros(&[0])),
        ("rows".to_string(), Tensor::zeros_dtype(&[0, 7], DType::F64)),
        ("ids".to_string(), Tensor::zeros_dtype(&[3, 0, 2], DType::I64)),
        ("scalar".to_string(), Tensor::scalar(-0.0f32)),
    ];
    assert_same(&state, &read_safetensors(&write_safetensors(&state).unwrap()).unwrap());
    let c = Checkpoint { model: StateDict::from(state.clone()), ..Default::default() };
    assert_same(&state, Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap().model.as_slice());
    // nothing at all
    assert!(read_safetensors(&write_safetensors(&[]).unwrap()).unwrap().is_empty());
    let empty = Checkpoint::from_bytes(&Checkpoint::default().to_bytes().unwrap()).unwrap();
    assert!(empty.model.is_empty() && empty.optimizer.is_none() && empty.metadata.is_empty());
}

#[test]
fn batch_norm_state_keeps_int64_counter() {
    use sinew_autograd::Var;
    use sinew_nn::{BatchNorm1d, Forward, Module};
    let bn = BatchNorm1d::new(3);
    bn.forward(&Var::constant(Tensor::arange(0.0, 12.0, 1.0).reshape(&[4, 3])));
    let c = Checkpoint { metadata: BTreeMap::from([("k".into(), "v".into())]), ..Checkpoint::new(&bn) };
    let back = Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap();
    let n = back.model.get("num_batches_tracked").unwrap();
    assert_eq!((n.dtype(), n.to_vec::<i64>()), (DType::I64, vec![1]));
    let fresh = BatchNorm1d::new(3);
    assert!(back.model.load_into(&fresh, true).unwrap().is_clean());
    assert_same(&bn.state_dict(), &fresh.state_dict());
}
