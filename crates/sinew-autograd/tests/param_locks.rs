//! `Param`'s value can be read and replaced in one expression, as PyTorch's
//! `p.data = p.data * 0.5`, and reading a parameter while this thread holds its write
//! guard panics with the parameter's name instead of waiting on itself forever. Each case
//! runs on its own thread under a timeout, so a regression fails instead of hanging CI.

use std::sync::mpsc;
use std::time::Duration;

use sinew_autograd::Param;
use sinew_tensor::Tensor;

/// Runs `f` on a new thread; `Err` with a note if it has not finished within 10 s.
fn within_timeout<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<std::thread::Result<R>, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "deadlock: did not finish within 10 s".to_string())
}

#[test]
fn set_value_of_its_own_value_does_not_deadlock() {
    let r = within_timeout(|| {
        let p = Param::new("w", Tensor::ones(&[3]));
        p.set_value(p.value().mul_scalar(0.5));
        p.value().to_vec::<f32>()
    })
    .unwrap();
    assert_eq!(r.unwrap(), vec![0.5; 3]);
}

#[test]
fn a_value_read_before_an_in_place_update_keeps_its_value() {
    let p = Param::new("w", Tensor::ones(&[2]));
    let before = p.value();
    p.value_mut().as_mut_slice::<f32>()[0] = 7.0;
    assert_eq!(before.to_vec::<f32>(), vec![1.0, 1.0]);
    assert_eq!(p.value().to_vec::<f32>(), vec![7.0, 1.0]);
}

#[test]
fn reading_under_this_threads_write_guard_panics_naming_the_parameter() {
    for case in 0..3 {
        let r = within_timeout(move || {
            let p = Param::new("layer.weight", Tensor::ones(&[2]));
            let _guard = p.value_mut();
            match case {
                0 => drop(p.value()),
                1 => p.set_value(Tensor::zeros(&[2])),
                _ => drop(p.value_mut()),
            }
        })
        .unwrap();
        let err = r.expect_err("expected a panic");
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("layer.weight") && msg.contains("value_mut"), "{msg}");
    }
}

#[test]
fn other_threads_wait_for_the_guard_and_then_see_the_update() {
    let p = Param::new("w", Tensor::zeros(&[1]));
    let q = p.clone();
    let guard = p.value_mut();
    let reader = std::thread::spawn(move || q.value().to_vec::<f32>());
    std::thread::sleep(Duration::from_millis(50));
    let mut guard = guard;
    guard.as_mut_slice::<f32>()[0] = 2.0;
    drop(guard);
    assert_eq!(reader.join().unwrap(), vec![2.0]);
}
