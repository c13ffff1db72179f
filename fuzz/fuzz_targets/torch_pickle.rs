//! libFuzzer entry point; the body is [`sinew_fuzz::torch_pickle`] (whether the input loaded is
//! of no use to libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sinew_fuzz::torch_pickle(data);
});
