//! Shapes whose element count (or a size computed from the arguments) would overflow are
//! refused before anything is allocated or any kernel runs: a clear error or panic naming
//! the op and the shape, never a wrapped size, an out-of-bounds write, an abort or a hang.
//! (Before the checks, `expand` to `[2^62 + 1, 4]` followed by `matmul` wrote past a
//! 4-element buffer.)

use std::panic::{AssertUnwindSafe, catch_unwind};

use sinew_tensor::shape::MAX_EXTENT;
use sinew_tensor::{Conv2dOptions, DType, Generator, Pool2dOptions, Tensor, TensorError};

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn assert_panics_naming(op: &str, f: impl FnOnce()) {
    let msg = panic_message(f);
    assert!(msg.starts_with(op) && msg.contains("too large"), "panic message {msg:?} should name {op}");
}

#[test]
fn expand_past_the_element_limit_is_refused_before_any_kernel_runs() {
    let wide = [(1usize << 62) + 1, 4];
    let err = Tensor::ones(&[1, 4]).try_expand(&[wide[0] as isize, 4]).unwrap_err();
    assert_eq!(err, TensorError::TooLarge { op: "expand", shape: wide.to_vec() });
    assert_panics_naming("expand", || {
        let _ = Tensor::ones(&[1, 4]).expand(&[wide[0] as isize, 4]).matmul(&Tensor::eye(4));
    });
    assert!(matches!(Tensor::ones(&[1, 4]).try_broadcast_to(&wide), Err(TensorError::TooLarge { .. })));
    // a size below -1 is not "keep this dimension"
    assert!(matches!(Tensor::ones(&[1, 4]).try_expand(&[2, -2]), Err(TensorError::InvalidArgument { .. })));
}

#[test]
fn a_view_at_the_limit_is_allowed_and_copying_it_is_a_panic_not_an_abort() {
    // 2^60 elements of stride 0: fine as a view; copying it needs memory no machine has
    let v = Tensor::ones(&[1, 1]).expand(&[1 << 30, 1 << 30]);
    assert_eq!(v.numel(), MAX_EXTENT);
    let msg = panic_message(|| {
        let _ = v.contiguous();
    });
    assert!(msg.contains("out of memory") || msg.contains("larger than any allocation"), "{msg}");
}

#[test]
fn broadcasting_two_large_views_is_refused() {
    let a = Tensor::ones(&[1, 1]).expand(&[1 << 40, 1]);
    let b = Tensor::ones(&[1, 1]).expand(&[1, 1 << 40]);
    assert_panics_naming("add", || {
        let _ = &a + &b;
    });
    assert_panics_naming("where", || {
        let _ = a.where_(&a, &b);
    });
}

#[test]
fn matmul_whose_product_would_be_too_large_is_an_error() {
    let a = Tensor::ones(&[1, 1]).expand(&[1 << 40, 1]);
    let b = Tensor::ones(&[1, 1]).expand(&[1, 1 << 40]);
    assert_eq!(
        a.try_matmul(&b).unwrap_err(),
        TensorError::TooLarge { op: "matmul", shape: vec![1 << 40, 1 << 40] }
    );
    // batch dimensions times the matrix
    let a = Tensor::ones(&[1, 1, 1]).expand(&[1 << 31, 1 << 20, 1]);
    let b = Tensor::ones(&[1, 1 << 20]);
    assert!(matches!(a.try_matmul(&b), Err(TensorError::TooLarge { op: "matmul", .. })));
}

#[test]
fn constructors_refuse_shapes_past_the_limit() {
    let mut g = Generator::new(0);
    assert_panics_naming("full", || {
        let _ = Tensor::zeros(&[1 << 40, 1 << 30]);
    });
    assert_panics_naming("normal", || {
        let _ = Tensor::randn_with(&[(1 << 62) + 1, 4], DType::F32, &mut g);
    });
    assert_panics_naming("uniform", || {
        let _ = Tensor::rand_with(&[usize::MAX, 2], DType::F64, &mut g);
    });
    assert_panics_naming("rand_int", || {
        let _ = Tensor::rand_int_with(&[1 << 61], 0, 3, &mut g);
    });
    assert_panics_naming("bernoulli", || {
        let _ = Tensor::bernoulli_with(&[1 << 61], 0.5, DType::F32, &mut g);
    });
    // eye(usize::MAX) used to spin in an n·n loop that had wrapped
    assert_panics_naming("eye", || {
        let _ = Tensor::eye(usize::MAX);
    });
    assert_panics_naming("eye", || {
        let _ = Tensor::eye(1 << 31);
    });
    assert_panics_naming("linspace", || {
        let _ = Tensor::linspace(0.0, 1.0, usize::MAX);
    });
    let msg = panic_message(|| {
        let _ = Tensor::arange(0.0, 1e300, 1.0);
    });
    assert!(msg.starts_with("arange") && msg.contains("2^60"), "{msg}");
}

#[test]
fn from_vec_and_reshape_check_the_extent_of_empty_shapes_too() {
    // no elements, but partial products of its sizes would overflow
    let err = Tensor::from_vec(Vec::<f32>::new(), &[1 << 62, 0]).unwrap_err();
    assert_eq!(err, TensorError::TooLarge { op: "from_vec", shape: vec![1 << 62, 0] });
    assert!(Tensor::from_vec(Vec::<f32>::new(), &[1 << 40, 0, 1 << 20]).is_ok());
    let e = Tensor::zeros(&[0]);
    assert!(matches!(e.try_reshape(&[1 << 62, 1 << 3, 0]), Err(TensorError::TooLarge { op: "reshape", .. })));
    assert!(matches!(
        Tensor::zeros(&[2, 3]).try_reshape(&[usize::MAX, 2]),
        Err(TensorError::TooLarge { op: "reshape", .. })
    ));
}

#[test]
fn cat_whose_total_size_overflows_is_an_error() {
    let big = Tensor::ones(&[1, 1]).expand(&[1 << 59, 1]);
    let err = Tensor::try_cat(&[&big, &big, &big], 0).unwrap_err();
    assert!(matches!(err, TensorError::TooLarge { op: "cat", .. }), "{err}");
    let huge = Tensor::ones(&[1]).expand(&[MAX_EXTENT as isize]);
    let parts = vec![&huge; 17];
    assert!(matches!(Tensor::try_cat(&parts, 0), Err(TensorError::TooLarge { .. })));
}

#[test]
fn index_select_and_one_hot_check_their_output_shape_first() {
    let x = Tensor::ones(&[1, 1]).expand(&[1, 1 << 40]);
    let idx = Tensor::zeros_dtype(&[1], DType::I64).expand(&[1 << 30]);
    assert!(matches!(x.try_index_select(0, &idx), Err(TensorError::TooLarge { op: "index_select", .. })));
    assert_panics_naming("one_hot", || {
        let _ = Tensor::zeros_dtype(&[4], DType::I64).one_hot(1 << 59);
    });
}

#[test]
fn convolution_geometry_is_checked_before_allocating() {
    let x = Tensor::ones(&[1, 1, 4, 4]);
    let w = Tensor::ones(&[1, 1, 3, 3]);
    // padding 2^40 on both axes: a 2^41 × 2^41 output (this used to abort on a 35 TB allocation)
    let err = x.try_conv2d(&w, None, Conv2dOptions::default().padding(1 << 40)).unwrap_err();
    assert!(err.to_string().starts_with("conv2d: the output would have shape"), "{err}");
    // padding near usize::MAX used to overflow the padded size
    let err = x.try_conv2d(&w, None, Conv2dOptions::default().padding(usize::MAX / 2 + 1)).unwrap_err();
    assert!(err.to_string().contains("padding"), "{err}");
    let mut o = Conv2dOptions::default().padding(1 << 62);
    o.stride = [1 << 62, 1 << 62];
    assert!(x.try_conv2d(&w, None, o).is_err());
    // huge dilation times the kernel size
    assert!(x.try_conv2d(&w, None, Conv2dOptions::default().dilation(usize::MAX / 2)).is_err());
    // transposed: (H − 1)·stride overflows
    let wt = Tensor::ones(&[1, 1, 3, 3]);
    let err = x.try_conv_transpose2d(&wt, None, Conv2dOptions::default().stride(usize::MAX / 2)).unwrap_err();
    assert!(err.to_string().starts_with("conv_transpose2d"), "{err}");
    // the gradient ops take a spatial size: no probe tensor of it is allocated any more
    let dy = Tensor::ones(&[1, 1, 2, 2]);
    let msg = panic_message(|| {
        let _ = Tensor::conv2d_input_grad(&dy, &w, [1 << 40, 1 << 40], Conv2dOptions::default());
    });
    assert!(msg.starts_with("conv2d_input_grad"), "{msg}");
}

#[test]
fn pooling_geometry_is_checked_before_allocating() {
    let x = Tensor::ones(&[1, 1, 4, 4]);
    let mut o = Pool2dOptions::new(2);
    o.kernel = [1 << 62, 2];
    assert!(x.try_max_pool2d(o).is_err());
    let mut o = Pool2dOptions::new(2);
    o.stride = [usize::MAX, 1];
    o.ceil_mode = true;
    assert!(x.try_max_pool2d(o).is_err());
    let mut o = Pool2dOptions::new(3);
    o.dilation = [usize::MAX / 2, 1];
    assert!(x.try_max_pool2d(o).is_err());
    let msg = panic_message(|| {
        let _ = x.adaptive_avg_pool2d([1 << 40, 1 << 40]);
    });
    assert!(msg.contains("too large"), "{msg}");
}
