#![no_main]

#[global_allocator]
static ALLOC: skein_fuzz::CappedAlloc = skein_fuzz::CappedAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    skein_fuzz::run_target("promql", data);
});
