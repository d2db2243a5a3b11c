//! The server's version, and the settings that need a newer one: what a
//! 2.10+ server offers (several filter subjects on a consumer, consumer
//! metadata, stream compression, a `create` that refuses a different
//! consumer of the same name) is refused on an older one by name, with its
//! version, instead of being dropped silently by a server that does not
//! know the field.

use crate::connect::Settings;
use crate::error::Result;

/// A server's `major.minor.patch` (0 for parts it did not send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ServerVersion(pub(super) u32, pub(super) u32, pub(super) u32);

impl ServerVersion {
    /// The first release with the features named here.
    pub(super) const FEATURES_2_10: ServerVersion = ServerVersion(2, 10, 0);

    /// From the server's INFO (`2.9.10`, `2.15.1-beta`).
    pub(super) fn of(client: &async_nats::Client) -> ServerVersion {
        ServerVersion::parse(&client.server_info().version)
    }

    fn parse(text: &str) -> ServerVersion {
        let mut parts = text
            .trim_start_matches('v')
            .split(['.', '-', '+'])
            .map(|part| part.parse::<u32>().unwrap_or(0));
        let mut next = || parts.next().unwrap_or(0);
        ServerVersion(next(), next(), next())
    }

    /// Whether this server has 2.10's features.
    pub(super) fn has_2_10(self) -> bool {
        self >= ServerVersion::FEATURES_2_10
    }

    /// `Ok` when the server has 2.10's features; else an error on setting
    /// `key` naming `what` needs them, the server and its version.
    pub(super) fn require_2_10(
        self,
        settings: &Settings<'_>,
        key: &str,
        what: &str,
        url: &str,
    ) -> Result<()> {
        if self.has_2_10() {
            return Ok(());
        }
        let ServerVersion(major, minor, patch) = self;
        Err(settings.error(
            key,
            format!("{what} needs nats-server 2.10 or later; {url} runs {major}.{minor}.{patch}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::ServerVersion;

    #[test]
    fn versions_are_read_and_ordered() {
        assert_eq!(ServerVersion::parse("2.9.10"), ServerVersion(2, 9, 10));
        assert_eq!(
            ServerVersion::parse("v2.15.1-beta.2"),
            ServerVersion(2, 15, 1)
        );
        assert!(!ServerVersion::parse("2.9.25").has_2_10());
        assert!(ServerVersion::parse("2.10.0").has_2_10());
        assert!(ServerVersion::parse("3.0").has_2_10());
    }
}
