//! libFuzzer entry point; the body is [`sinew_fuzz::read_csv_bytes`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sinew_fuzz::read_csv_bytes(data));
