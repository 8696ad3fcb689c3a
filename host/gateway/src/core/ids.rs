//! Request ids: time-ordered UUIDs (v7) whose order is arrival order, so the
//! databank's log is indexed by its ids alone.

/// A time-ordered UUID (v7) whose order is also arrival order within a millisecond:
/// the 12 bits after the timestamp count requests (RFC 9562's "fixed-length dedicated
/// counter"); the rest is random, from the thread's generator (no syscall).
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    // (milliseconds << 12) | counter, never going backwards.
    let previous = LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some((now_ms << 12).max(last + 1)));
    let stamp = (now_ms << 12).max(previous.unwrap_or(0) + 1);
    format_id(stamp >> 12, (stamp & 0xfff) as u16)
}

fn format_id(millis: u64, counter: u16) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..8].copy_from_slice(&counter.to_be_bytes());
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes[8..]);
    uuid::Builder::from_bytes(bytes)
        .with_version(uuid::Version::SortRand)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
        .to_string()
}

/// The Unix milliseconds a request id was made at (its first 48 bits), which is the
/// request's start as the databank records it.
pub fn millis_of(id: &str) -> Option<i64> {
    let high = u64::from_str_radix(id.get(..8)?, 16).ok()?;
    let low = u64::from_str_radix(id.get(9..13)?, 16).ok()?;
    Some(((high << 16) | low) as i64)
}

/// The smallest request id made at `ms` or later. Ids sort by time, so a time range is
/// an id range: the databank's log needs no other time index.
pub fn first_id_at(ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1) as u64;
    format!("{:08x}-{:04x}", ms >> 16, ms & 0xffff)
}

/// A request id made at `ms` (for records written by tests and benchmarks).
pub fn request_id_at(ms: i64) -> String {
    format_id(ms.max(0) as u64, rand::random::<u16>() & 0xfff)
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_sort_in_arrival_order() {
        let ids: Vec<String> = (0..5000).map(|_| super::new_request_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.iter().all(|id| id.as_bytes()[14] == b'7'), "version 7");
    }

    #[test]
    fn ids_are_a_time_index() {
        let ms = 1_795_737_600_123;
        let id = super::request_id_at(ms);
        assert_eq!(super::millis_of(&id), Some(ms));
        assert!(super::first_id_at(ms) <= id && id < super::first_id_at(ms + 1));
        assert!(super::first_id_at(ms - 1) < super::first_id_at(ms));
        let now = super::new_request_id();
        let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
            - super::millis_of(&now).unwrap();
        assert!((0..1000).contains(&age), "{age}");
    }
}
