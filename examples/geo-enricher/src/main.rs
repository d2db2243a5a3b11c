//! `cargo run -p geo-enricher`: enriches a few IP addresses through the guest.

fn main() -> Result<(), torvyn_engine::Error> {
    let ips = ["10.0.0.1", "81.2.3.4", "91.1.1.1", "8.8.8.8"];
    let (pairs, lookups) = geo_enricher::enrich(&ips)?;
    for (ip, country) in pairs {
        println!("{ip:<12} -> {country}");
    }
    println!("{lookups} lookups served by the host");
    Ok(())
}
