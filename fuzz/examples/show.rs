//! Prints what a fuzz input means and runs it: `cargo run --example show -- TARGET FILE`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (target, file) = (&args[1], &args[2]);
    let data = std::fs::read(file).expect("read input");
    match target.as_str() {
        "log_recovery" => println!("{:#?}", ringtail_fuzz::log_recovery::Scenario::decode(&data)),
        "segment_bytes" => println!("{:#?}", ringtail_fuzz::segment_bytes::Input::parse(&data)),
        "kafka_request" => print!("{}", ringtail_fuzz::kafka_request::describe(&data)),
        // produce_batches, group_member_metadata: their steps are printed
        // as they run (`RINGTAIL_FUZZ_TRACE`).
        _ => println!("{data:02x?}"),
    }
    if target == "kafka_request" {
        ringtail_fuzz::kafka_request::run_verbose(&data);
        println!("passes");
        return;
    }
    std::env::set_var("RINGTAIL_FUZZ_TRACE", "1");
    let run = ringtail_fuzz::TARGETS.iter().find(|(n, _)| n == target).expect("known target").1;
    run(&data);
    println!("passes");
}
