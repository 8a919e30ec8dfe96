//! Exit codes: the one table, and the text `--help` shows for it.

use idem_client::Error;

pub const OK: u8 = 0;
pub const OTHER: u8 = 1;
pub const BAD_REQUEST: u8 = 2;
pub const IN_PROGRESS: u8 = 3;
pub const FENCED: u8 = 4;
pub const NOT_FOUND: u8 = 5;
pub const FINGERPRINT_MISMATCH: u8 = 6;
pub const DENIED: u8 = 7;

pub const HELP: &str = "\
Exit codes:
  0  success (acquired, completed replay, done)
  1  registry unavailable, or any other error
  2  bad usage or bad request
  3  in progress (someone else holds the key)
  4  fenced (the token no longer holds the key)
  5  not found
  6  fingerprint mismatch
  7  unauthorized or forbidden (no valid token, or no grant for this)";

pub fn code(e: &Error) -> u8 {
    match e {
        Error::FingerprintMismatch => FINGERPRINT_MISMATCH,
        Error::Fenced => FENCED,
        Error::NotFound => NOT_FOUND,
        Error::BadRequest(_) | Error::TooLarge => BAD_REQUEST,
        Error::Unauthorized(_) | Error::Forbidden(_) => DENIED,
        Error::Unavailable(_) | Error::Transport(_) | Error::Unexpected { .. } => OTHER,
    }
}
