#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drehscheibe_fuzz::jose(data));
