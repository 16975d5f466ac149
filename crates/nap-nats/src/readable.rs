//! Durations as people write them, for messages: `10s`, `1.5s`, `250ms`.

use std::fmt;
use std::time::Duration;

/// A duration that displays rounded for people: whole or tenths of seconds
/// from one second up, whole milliseconds below.
///
/// ```
/// use std::time::Duration;
/// use nap_nats::readable::Secs;
///
/// assert_eq!(Secs(Duration::from_millis(300_476)).to_string(), "300.5s");
/// assert_eq!(Secs(Duration::from_micros(300_476)).to_string(), "300ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d >= Duration::from_secs(1) {
            let tenths = (d.as_millis() + 50) / 100;
            if tenths.is_multiple_of(10) {
                write!(f, "{}s", tenths / 10)
            } else {
                write!(f, "{}.{}s", tenths / 10, tenths % 10)
            }
        } else {
            write!(f, "{}ms", d.as_millis())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        let s = |ms| Secs(Duration::from_millis(ms)).to_string();
        assert_eq!(s(1004), "1s");
        assert_eq!(s(10_020), "10s");
        assert_eq!(s(1500), "1.5s");
        assert_eq!(s(250), "250ms");
        assert_eq!(s(0), "0ms");
    }
}
