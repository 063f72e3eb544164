//! `accept-version` negotiation: the highest version both sides speak.

use warren_stomp_codec::{negotiate_version, Version};

const ALL: &[Version] = &Version::ALL;

#[test]
fn highest_common_version_wins() {
    assert_eq!(
        negotiate_version(Some(b"1.0,1.1,1.2"), ALL),
        Some(Version::V1_2)
    );
    assert_eq!(
        negotiate_version(Some(b"1.2,1.0"), ALL),
        Some(Version::V1_2)
    );
    assert_eq!(negotiate_version(Some(b"1.1"), ALL), Some(Version::V1_1));
    assert_eq!(
        negotiate_version(Some(b"1.2"), &[Version::V1_0, Version::V1_1]),
        None
    );
    assert_eq!(
        negotiate_version(Some(b"1.0,1.2"), &[Version::V1_0, Version::V1_1]),
        Some(Version::V1_0)
    );
}

#[test]
fn missing_header_means_1_0() {
    assert_eq!(negotiate_version(None, ALL), Some(Version::V1_0));
    assert_eq!(negotiate_version(None, &[Version::V1_2]), None);
}

#[test]
fn unknown_versions_and_padding() {
    assert_eq!(
        negotiate_version(Some(b"2.0,1.1,x"), ALL),
        Some(Version::V1_1)
    );
    assert_eq!(
        negotiate_version(Some(b"1.0, 1.1 , 1.2"), ALL),
        Some(Version::V1_2)
    );
    assert_eq!(negotiate_version(Some(b"2.0"), ALL), None);
    assert_eq!(negotiate_version(Some(b""), ALL), None);
    assert_eq!(negotiate_version(Some(b",,"), ALL), None);
}
