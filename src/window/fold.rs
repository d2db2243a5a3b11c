//! How the host asks the guest to fold: [`WindowFold`] for plain Rust and
//! tests, its async twin for the flows, which call guests through either
//! invoker.

use std::future::Future;

use super::Window;

/// What the host asks of the guest for each element: fold it into a
/// window's state, and merge two sessions' states. Implemented over the
/// guest's exports, with the element at hand; in tests, over plain Rust.
///
/// ```
/// use torvyn_engine::window::{Window, WindowFold};
///
/// /// Counts a key's elements per window: the state is a `u64`, little-endian.
/// struct Count;
///
/// impl WindowFold for Count {
///     type Error = std::convert::Infallible;
///
///     fn fold(&mut self, _key: &str, _window: Window, state: Option<&[u8]>) -> Result<Vec<u8>, Self::Error> {
///         let count = state.map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()));
///         Ok((count + 1).to_le_bytes().to_vec())
///     }
///
///     fn merge(&mut self, _key: &str, _window: Window, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Self::Error> {
///         let count = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap());
///         Ok((count(a) + count(b)).to_le_bytes().to_vec())
///     }
/// }
/// ```
pub trait WindowFold {
    /// Why a call failed (the guest's error, a trap).
    type Error;

    /// The state of `key`'s `window` once the element is in it, from its
    /// state before (`None`: the element opens the window).
    fn fold(
        &mut self,
        key: &str,
        window: Window,
        state: Option<&[u8]>,
    ) -> Result<Vec<u8>, Self::Error>;

    /// One state for two sessions of `key` that an element joined into
    /// `window`, the earlier session's state first.
    fn merge(
        &mut self,
        key: &str,
        window: Window,
        earlier: &[u8],
        later: &[u8],
    ) -> Result<Vec<u8>, Self::Error>;
}

/// [`WindowFold`] with calls that are futures: how the flows call a guest
/// (through either invoker, as [`crate::calls`] does).
pub(crate) trait AsyncWindowFold {
    /// Why a call failed.
    type Error;

    /// As [`WindowFold::fold`].
    fn fold(
        &mut self,
        key: &str,
        window: Window,
        state: Option<&[u8]>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>>;

    /// As [`WindowFold::merge`].
    fn merge(
        &mut self,
        key: &str,
        window: Window,
        earlier: &[u8],
        later: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>>;
}

/// A sync fold as an async one whose futures are ready at once.
pub(super) struct Ready<'f, F>(pub(super) &'f mut F);

impl<F: WindowFold> AsyncWindowFold for Ready<'_, F> {
    type Error = F::Error;

    fn fold(
        &mut self,
        key: &str,
        window: Window,
        state: Option<&[u8]>,
    ) -> impl Future<Output = Result<Vec<u8>, F::Error>> {
        std::future::ready(self.0.fold(key, window, state))
    }

    fn merge(
        &mut self,
        key: &str,
        window: Window,
        earlier: &[u8],
        later: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, F::Error>> {
        std::future::ready(self.0.merge(key, window, earlier, later))
    }
}
