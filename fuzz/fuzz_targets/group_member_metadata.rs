#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: ringtail_fuzz::LimitAlloc = ringtail_fuzz::LimitAlloc;

fuzz_target!(|data: &[u8]| ringtail_fuzz::group_member_metadata::run(data));
