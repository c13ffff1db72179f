//! libFuzzer entry point; the body is [`sinew_fuzz::read_torch`] (whether the input loaded is
//! of no use to libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sinew_fuzz::read_torch(data);
});
